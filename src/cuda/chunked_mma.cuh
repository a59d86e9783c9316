// Warp-level tensor-core building blocks for the chunked prefill: ldmatrix fragment loads and
// mma.sync m16n8k16 (bf16 or f16 operands, float32 accumulators) over tiles in shared memory.
// Operands are stored as 16-bit bit patterns (uint16_t); BF16 picks the interpretation.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda::chunked {

template <bool BF16>
__device__ __forceinline__ uint16_t to_bits(float x) {
  if constexpr (BF16) {
    return __bfloat16_as_ushort(__float2bfloat16_rn(x));
  } else {
    return __half_as_ushort(__float2half_rn(x));
  }
}

template <bool BF16>
__device__ __forceinline__ float from_bits(uint16_t h) {
  if constexpr (BF16) {
    return __bfloat162float(__ushort_as_bfloat16(h));
  } else {
    return __half2float(__ushort_as_half(h));
  }
}

// The 16-bit value in half h (0: the low bits) of w as float. bfloat16 is the top half of a
// float32: one mask or shift, where from_bits of the extracted half took two.
template <bool BF16>
__device__ __forceinline__ float half_as_float(uint32_t w, int h) {
  if constexpr (BF16) {
    return __uint_as_float(h ? (w & 0xffff0000u) : (w << 16));
  } else {
    return from_bits<false>(static_cast<uint16_t>(h ? w >> 16 : w & 0xffffu));
  }
}

// Two values as one 32-bit word, the first at the lower address: one packed conversion
// (cvt.rn.bf16x2.f32 / cvt.rn.f16x2.f32), the same rounding as two to_bits.
template <bool BF16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (BF16) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

// The rounding residuals of hi = pack2(x0, x1), packed the same way: hi + lo carries about
// twice the significant bits of hi alone.
template <bool BF16>
__device__ __forceinline__ uint32_t pack2_lo(float x0, float x1, uint32_t hi) {
  return pack2<BF16>(x0 - half_as_float<BF16>(hi, 0), x1 - half_as_float<BF16>(hi, 1));
}

// 2^x and e^x on the special function unit, results below 2^-126 flushed to zero: __expf
// without -ftz guards every call against subnormal results (three more instructions).
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}
constexpr float kLog2e = 1.4426950408889634f;
__device__ __forceinline__ float exp_ftz(float x) { return exp2_ftz(x * kLog2e); }

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(p)));
}

// 16-byte global -> shared copy that completes asynchronously; zero-fills when !valid.
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0));
}
// The same with an L2 cache policy (l2_evict_first).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid, uint64_t pol) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2, %3;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(valid ? 16 : 0), "l"(pol));
}
__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(smem_addr(dst)), "l"(src));
}

// Stores with an L2 cache policy (l2_evict_first).
__device__ __forceinline__ void st_global_hint(uint16_t* p, uint16_t v, uint64_t pol) {
  asm volatile("st.global.L2::cache_hint.b16 [%0], %1, %2;" ::"l"(p), "h"(v), "l"(pol) : "memory");
}
__device__ __forceinline__ void st_global_hint(uint32_t* p, uint32_t v, uint64_t pol) {
  asm volatile("st.global.L2::cache_hint.b32 [%0], %1, %2;" ::"l"(p), "r"(v), "l"(pol) : "memory");
}

__device__ __forceinline__ void cp_async_wait_all() {
  asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::: "memory");
}
// The cp.async issued since the last commit form one group; cp_async_wait<N> waits until at most
// N committed groups are still in flight.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Shared-memory barriers (mbarrier) between a producer of stages and their consumers. A phase
// completes when `count` arrivals (mbar_init) have come; waiters name the phase by its parity.
__device__ __forceinline__ void mbar_init(uint64_t* bar, int count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}

// Arrival with release semantics: the caller's earlier shared-memory writes are visible to
// whoever waits for the phase.
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared.b64 st, [%0];\n}\n" ::"r"(smem_addr(bar)) : "memory");
}

// The phase cannot complete before every cp.async the caller issued so far has landed (the
// caller still arrives with mbar_arrive).
__device__ __forceinline__ void mbar_track_cp_async(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.shared.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}

// Waits (acquire) until the phase of parity `parity` has completed.
__device__ __forceinline__ void mbar_wait(uint64_t* bar, uint32_t parity) {
  uint32_t done = 0;
  do {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(smem_addr(bar)), "r"(parity)
                 : "memory");
#else
    asm volatile("{\n.reg .pred p;\nmbarrier.test_wait.parity.shared.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(smem_addr(bar)), "r"(parity)
                 : "memory");
#endif
  } while (!done);
}

template <bool BF16>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
  if constexpr (BF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// acc (a 16 x 8*NT tile at rows row0.., columns col0..) += A[row0.., 0..K) * B[0..K, col0..).
// A_KM: A is stored k-major ([k][m], i.e. A^T row-major) rather than [m][k].
// B_KN: B is stored [k][n] (row-major B) rather than [n][k].
// Accumulator element acc[j][e]: row row0 + lane/4 + 8*(e/2), column col0 + 8*j + 2*(lane%4) + e%2.
template <bool BF16, int NT, bool A_KM, bool B_KN>
__device__ __forceinline__ void warp_gemm(float (&acc)[NT][4], const uint16_t* A, int lda,
                                          const uint16_t* B, int ldb, int K, int row0, int col0) {
  static_assert(NT % 2 == 0, "n tiles come in pairs");
  const int lane = threadIdx.x & 31;
  const int mi = lane >> 3, r8 = lane & 7;
#pragma unroll 4
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t a[4];
    if constexpr (A_KM) {
      ldsm_x4_t(a, A + (k0 + (mi >> 1) * 8 + r8) * lda + row0 + (mi & 1) * 8);
    } else {
      ldsm_x4(a, A + (row0 + (lane & 15)) * lda + k0 + (lane >> 4) * 8);
    }
#pragma unroll
    for (int p = 0; p < NT / 2; ++p) {
      const int n0 = col0 + 16 * p;
      uint32_t b[4];
      if constexpr (B_KN) {
        ldsm_x4_t(b, B + (k0 + (mi & 1) * 8 + r8) * ldb + n0 + (mi >> 1) * 8);
      } else {
        ldsm_x4(b, B + (n0 + (mi >> 1) * 8 + r8) * ldb + k0 + (mi & 1) * 8);
      }
      mma16816<BF16>(acc[2 * p], a, b[0], b[1]);
      mma16816<BF16>(acc[2 * p + 1], a, b[2], b[3]);
    }
  }
}

template <int NT>
__device__ __forceinline__ void zero_acc(float (&acc)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) acc[j][e] = 0.f;
  }
}

}  // namespace linattn::detail::cuda::chunked
