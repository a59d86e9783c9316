// The two 64-column slab CTAs of one value head as a cluster of two (the final pass's PW form,
// chunked_scan.cu): each forms P o Q K^T for every other chunk and hands it to the other CTA's
// shared memory with a bulk copy, instead of both forming it for every chunk. What the hand-over
// needs: the CTA's rank, the peer's address of a shared variable, a cluster-wide barrier,
// mbarrier arrivals on the peer, the copy, and a wait that acquires at cluster scope. sm_90a
// only (LINATTN_WGMMA): the PW form is launched in builds that have wgmma; elsewhere these are
// never reached and compile to nothing.
#pragma once

#include <cstdint>

#include "cuda/chunked_wgmma.cuh"

namespace linattn::detail::cuda::chunked {

__device__ __forceinline__ int cluster_rank() {
  uint32_t r = 0;
#if defined(LINATTN_WGMMA)
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
#endif
  return static_cast<int>(r);
}

// Every thread of both CTAs: the mbarriers each initialised before are visible to the peer, and
// neither CTA touches the other's shared memory before the other has started.
__device__ __forceinline__ void cluster_sync_all() {
#if defined(LINATTN_WGMMA)
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}

// The shared::cluster address of `p` (this CTA's shared memory) in the CTA of rank `peer`.
__device__ __forceinline__ uint32_t peer_addr(const void* p, int peer) {
  uint32_t a = smem_addr(p);
#if defined(LINATTN_WGMMA)
  asm volatile("mapa.shared::cluster.u32 %0, %0, %1;\n" : "+r"(a) : "r"(peer));
#endif
  return a;
}

// An arrival on the peer's mbarrier (address from peer_addr) that releases this thread's
// earlier memory operations at cluster scope.
__device__ __forceinline__ void mbar_arrive_peer(uint32_t bar) {
#if defined(LINATTN_WGMMA)
  asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];\n" ::"r"(bar) : "memory");
#endif
}

// `bytes` from this CTA's `src` to the peer's `dst`, an arrival on the peer's mbarrier `bar`
// that expects them, their landing counted there (complete_tx).
__device__ __forceinline__ void copy_to_peer(uint32_t dst, const void* src, uint32_t bytes, uint32_t bar) {
#if defined(LINATTN_WGMMA)
  asm volatile("mbarrier.arrive.expect_tx.release.cluster.shared::cluster.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes)
               : "memory");
  asm volatile("cp.async.bulk.shared::cluster.shared::cta.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   dst),
               "r"(smem_addr(src)), "r"(bytes), "r"(bar)
               : "memory");
#endif
}

// mbar_wait for a phase the peer completes: acquires at cluster scope.
__device__ __forceinline__ void mbar_wait_cluster(uint64_t* bar, uint32_t parity) {
#if defined(LINATTN_WGMMA)
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, "
        "p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
  } while (!done);
#else
  mbar_wait(bar, parity);
#endif
}

}  // namespace linattn::detail::cuda::chunked
