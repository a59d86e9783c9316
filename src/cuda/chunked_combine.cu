// The short sequential step between the two scan passes of a segmented window
// (chunked_layout.cuh): per (sequence, kv head), the true state at the start of segment s + 1 is
// M_s S_s + L_s, where S_s is the true start of segment s, M_s its transition product and L_s
// its end state from zero. Columns of the state are independent, so one CTA takes 8 of them
// and walks the segments in order; float32 throughout, on CUDA cores (a few d_k^2 x 8 products).
// H100, 2/8 heads 1x65536 (8 segments): 40 us with the loads of M beside the products, 28 us
// with all of a segment's loads ahead of its barrier; 34 us with the sums also split over four
// threads per row (1024-thread CTAs, shuffle reduction), not kept.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/chunked_layout.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

constexpr int kCols = 8;  // state columns per CTA; two threads per row take 4 each

template <int DK>
__global__ void __launch_bounds__(2 * DK) chunked_combine_kernel(const KernelArgs args) {
  const int dv = args.p.dv;
  const int groups = dv / kCols;
  const int64_t bh = blockIdx.x / groups;
  const int col = (blockIdx.x % groups) * kCols + 4 * (threadIdx.x & 1);
  const int i = threadIdx.x >> 1;
  __shared__ __align__(16) float S[DK][kCols];

  float* st = args.seg_state + bh * args.nseg * DK * dv;
  const float* ms = args.seg_m + bh * args.nseg * DK * DK;
  // Slot 1 already holds the true start of segment 1 (segment 0 ran from the true state).
  float4 x = *reinterpret_cast<const float4*>(st + (DK + i) * dv + col);
  *reinterpret_cast<float4*>(&S[i][4 * (threadIdx.x & 1)]) = x;
  for (int s = 1; s + 1 < args.nseg; ++s) {
    // The thread's row of M_s and its four columns of L_s do not depend on the walk: all of
    // them are requested before the barrier, one memory latency per segment (plain loads:
    // ptxas moved read-only ones past the barrier, two at a time, into the products).
    float* dst = st + ((s + 1) * DK + i) * dv + col;
    const float* m = ms + (static_cast<int64_t>(s) * DK + i) * DK;
    float4 mv[DK / 4];
#pragma unroll
    for (int k = 0; k < DK / 4; ++k) mv[k] = reinterpret_cast<const float4*>(m)[k];
    float4 acc = *reinterpret_cast<const float4*>(dst);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < DK / 4; ++k) {
      const float mk[4] = {mv[k].x, mv[k].y, mv[k].z, mv[k].w};
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        const float4 sv = *reinterpret_cast<const float4*>(&S[4 * k + kk][4 * (threadIdx.x & 1)]);
        acc.x += mk[kk] * sv.x;
        acc.y += mk[kk] * sv.y;
        acc.z += mk[kk] * sv.z;
        acc.w += mk[kk] * sv.w;
      }
    }
    __syncthreads();
    *reinterpret_cast<float4*>(&S[i][4 * (threadIdx.x & 1)]) = acc;
    *reinterpret_cast<float4*>(dst) = acc;
  }
}

}  // namespace

Status launch_combine(const KernelArgs& a, cudaStream_t stream) {
  if (a.nseg <= 2 || a.p.B == 0) return Status::ok_status();  // slot 1 is already exact
  const auto blocks = static_cast<unsigned>(a.p.B * a.p.Hkv * (a.p.dv / kCols));
  if (a.p.dk == 128) {
    chunked_combine_kernel<128><<<blocks, 256, 0, stream>>>(a);
  } else {
    chunked_combine_kernel<64><<<blocks, 128, 0, stream>>>(a);
  }
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (combine): ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

}  // namespace linattn::detail::cuda::chunked
