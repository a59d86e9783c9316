// Bulk copies between global and shared memory (sm_90 and newer): an mbarrier that counts the
// bytes of the reads, the reads themselves, and the writes back with their completion. Every
// function here is for code compiled for __CUDA_ARCH__ >= 900 (LINATTN_BULK_COPY defined);
// bulk_copy_available() tells the host whether the running binary and device have it.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "cuda/cuda_common.cuh"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define LINATTN_BULK_COPY 1
#endif

namespace linattn::detail::cuda {

// True when the current device is sm_90 or newer and this binary's kernels were compiled for it.
bool bulk_copy_available();

namespace bulk {

#if defined(LINATTN_BULK_COPY)
// One thread initialises the barrier (one arrival per phase); a __syncthreads() must follow
// before any other thread waits on it.
__device__ __forceinline__ void bar_init(uint64_t* bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_addr(bar)));
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// The arrival of the issuing thread, with the bytes the reads of this phase will deliver.
__device__ __forceinline__ void bar_expect(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

// More bytes for the current phase, without arriving (the issuing thread arrives later with
// bar_arrive, so the phase cannot complete in between).
__device__ __forceinline__ void bar_expect_more(uint64_t* bar, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}

__device__ __forceinline__ void bar_arrive(uint64_t* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
}

__device__ __forceinline__ void bar_wait(uint64_t* bar, uint32_t parity) {
  for (uint32_t done = 0; !done;) {
    asm volatile(
        "{ .reg .pred r; mbarrier.try_wait.parity.shared::cta.b64 r, [%1], %2; selp.u32 %0, 1, 0, r; }"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  }
}

// Programmatic dependent launch (kernels launched with launch_overlapped): grid_wait() blocks
// until the grids this one depends on have completed and their memory is visible (at once when
// there are none), so no global memory may be touched before it; grid_release() lets the next
// such kernel on the stream start its CTAs while this one still runs (they wait in their
// grid_wait()).
__device__ __forceinline__ void grid_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void grid_release() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }

// bytes (a multiple of 16, both addresses 16-byte aligned) from global src to shared dst,
// counted on bar.
__device__ __forceinline__ void load(void* dst, const void* src, uint32_t bytes, uint64_t* bar, uint64_t pol) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;"
      ::"r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(bar)), "l"(pol)
      : "memory");
}

// Makes this thread's shared-memory writes visible to the bulk copies (then __syncthreads()).
__device__ __forceinline__ void fence_to_async() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

__device__ __forceinline__ void store(void* dst, const void* src, uint32_t bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;" ::"l"(dst), "r"(smem_addr(src)),
               "r"(bytes)
               : "memory");
}

// Waits until the stores issued by this thread have read their shared memory, which may then
// go away (the CTA may exit: the writes themselves complete with the grid).
__device__ __forceinline__ void store_wait() {
  asm volatile("cp.async.bulk.commit_group;" ::: "memory");
  asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory");
}
#endif

}  // namespace bulk

// Launches kernel<<<grid, block, 0, s>>>(args...) allowed to overlap the tail of the previous
// kernel on the stream (programmatic stream serialization; in a captured graph, a programmatic
// edge): its CTAs may become resident before that kernel ends. The kernel must call
// bulk::grid_wait() before its first global memory access.
template <class... Params, class... Args>
cudaError_t launch_overlapped(void (*kernel)(Params...), unsigned grid, unsigned block, cudaStream_t s,
                              Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(grid);
  cfg.blockDim = dim3(block);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = s;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}
}  // namespace linattn::detail::cuda
