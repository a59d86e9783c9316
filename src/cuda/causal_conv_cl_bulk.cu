// Bulk-copy prefill of CausalConvWithState for channels-last layouts: 16-bit activations,
// L > 16.
//
// A CTA owns a tile of one sequence: kTs time steps by kTch channels. One thread issues a bulk
// copy per time step (each step's kTch channels are one contiguous run) for the tile's steps
// and the k-1 steps before them, into rows of shared memory, on one mbarrier; the weights load
// into registers meanwhile. Each thread then walks two channels down the rows, keeping the k-1
// previous inputs in registers, and writes each output over the input it has just consumed.
// One thread stores the output rows back with a bulk copy each. Against the register kernel
// (conv_cl_kernel, 16 steps by 4 channels per thread with every load issued up front) this
// moves whole rows per instruction and keeps several tiles per SM in flight on their own
// barriers, so the arithmetic of one tile overlaps the reads of the others.
//
// The halo steps before 0 are past_state (or zeros), read by the tile of the first steps,
// which also writes present_state (the last k-1 inputs, L > k-1) after that read: present_state
// may alias past_state. States of any dtype and strides go through plain loads and stores;
// they are k-1 values per channel.
#include <cstdint>

#include "cuda/bulk_copy.cuh"
#include "cuda/causal_conv_bulk.cuh"
#include "cuda/causal_conv_common.cuh"
#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda {
namespace {

constexpr int kTs = 32;        // time steps per tile
constexpr int kTch = 512;      // channels per tile: 1 KB rows
constexpr int kClThreads = kTch / 2;
constexpr int kMinL = 17;      // shorter calls take the update or register kernels

template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kClThreads) conv_cl_bulk_kernel(const CausalConvParams p, int64_t ncg,
                                                                  int64_t nts) {
#if defined(LINATTN_BULK_COPY)
  constexpr int KM = KT - 1;
  __shared__ __align__(128) uint16_t rows[kTs + KM][kTch];  // row r: step t0 - KM + r
  __shared__ __align__(8) uint64_t bar;
  const int64_t cg = blockIdx.x % ncg, rest = blockIdx.x / ncg;
  const int64_t t0 = (rest % nts) * kTs, b = rest / nts;
  const int64_t c0 = cg * kTch;
  const int nch = static_cast<int>(p.C - c0 < kTch ? p.C - c0 : kTch);  // a multiple of 8
  const int nt = static_cast<int>(p.L - t0 < kTs ? p.L - t0 : kTs);
  const int r0 = t0 == 0 ? KM : 0;  // first row read from the input

  if (threadIdx.x == 0) bulk::bar_init(&bar);
  __syncthreads();
  if (threadIdx.x == 0) {
    const uint32_t bytes = 2u * nch;
    bulk::bar_expect(&bar, bytes * static_cast<uint32_t>(KM + nt - r0));
    const uint64_t pol = l2_evict_first();
    const uint16_t* xg = static_cast<const uint16_t*>(p.x) + b * p.x_sb + c0;
    for (int r = r0; r < KM + nt; ++r) bulk::load(rows[r], xg + (t0 - KM + r) * p.x_sl, bytes, &bar, pol);
  }

  const int tid = threadIdx.x;
  const bool active = 2 * tid < nch;
  const int64_t c = c0 + 2 * tid;
  float w[KT][2], bias[2], win[KM][2];
  if (active) {
#pragma unroll
    for (int ch = 0; ch < 2; ++ch) {
#pragma unroll
      for (int j = 0; j < KT; ++j) w[j][ch] = ld<AT>(p.w, (c + ch) * p.w_sc + j * p.w_sk);
      bias[ch] = p.bias ? ld<AT>(p.bias, (c + ch) * p.bias_sc) : 0.f;
      if (t0 == 0) {
#pragma unroll
        for (int m = 0; m < KM; ++m) {
          win[m][ch] = p.past ? ld_rt(p.past, b * p.past_sb + (c + ch) * p.past_sc + m, p.past_dtype) : 0.f;
        }
      }
    }
    if (t0 == 0 && p.present) {
      // present_state = the last k-1 inputs (L > k-1), after the past_state read above.
#pragma unroll
      for (int ch = 0; ch < 2; ++ch) {
#pragma unroll
        for (int j = 0; j < KM; ++j) {
          const float v = ld<AT>(p.x, b * p.x_sb + (p.L - KM + j) * p.x_sl + c + ch);
          st_rt(p.present, b * p.pres_sb + (c + ch) * p.pres_sc + j, p.present_dtype, v);
        }
      }
    }
  }

  bulk::bar_wait(&bar, 0);

  if (active) {
    uint32_t* col = reinterpret_cast<uint32_t*>(&rows[0][0]) + tid;  // this thread's two channels
    constexpr int kRowWords = kTch / 2;
    if (t0 != 0) {
#pragma unroll
      for (int m = 0; m < KM; ++m) unpack2_rt(col[m * kRowWords], AT, win[m]);
    }
#pragma unroll
    for (int s = 0; s < kTs; ++s) {
      if (s >= nt) break;
      uint32_t* cell = col + (KM + s) * kRowWords;
      float xv[2], yv[2];
      unpack2_rt(*cell, AT, xv);
#pragma unroll
      for (int ch = 0; ch < 2; ++ch) {
        float acc = fmaf(w[KM][ch], xv[ch], bias[ch]);
#pragma unroll
        for (int m = 0; m < KM; ++m) acc = fmaf(w[m][ch], win[m][ch], acc);
#pragma unroll
        for (int m = 0; m + 1 < KM; ++m) win[m][ch] = win[m + 1][ch];
        win[KM - 1][ch] = xv[ch];
        yv[ch] = p.silu ? conv_silu<AT>(acc) : acc;
      }
      *cell = pack2_rt(yv, AT);
    }
  }

  bulk::fence_to_async();
  __syncthreads();
  if (threadIdx.x == 0) {
    uint16_t* yg = static_cast<uint16_t*>(p.y) + b * p.y_sb + c0;
    for (int s = 0; s < nt; ++s) bulk::store(yg + (t0 + s) * p.y_sl, rows[KM + s], 2u * nch);
    bulk::store_wait();
  }
#else
  __trap();  // conv_cl_bulk_ok routes only binaries built for sm_90 and newer here
#endif
}

template <int KT, linattn_dtype AT>
void launch_kt(const CausalConvParams& p, cudaStream_t s) {
  const int64_t ncg = (p.C + kTch - 1) / kTch, nts = (p.L + kTs - 1) / kTs;
  conv_cl_bulk_kernel<KT, AT><<<static_cast<unsigned>(p.B * nts * ncg), kClThreads, 0, s>>>(p, ncg, nts);
}

}  // namespace

bool conv_cl_bulk_ok(const CausalConvParams& p) {
  if (p.L < kMinL || p.B <= 0 || !bulk_io_ok(p) || p.x_sl % 8 != 0 || p.y_sl % 8 != 0) return false;
  const int64_t tiles = p.B * ((p.L + kTs - 1) / kTs) * ((p.C + kTch - 1) / kTch);
  return tiles <= 0x7fffffff && bulk_copy_available();
}

Status conv_cl_bulk(const CausalConvParams& p, cudaStream_t s) {
  with_bulk_types(p, [&](auto kt, auto at) { launch_kt<decltype(kt)::value, decltype(at)::value>(p, s); });
  return launch_status("causal_conv (cuda): channels-last prefill launch");
}

}  // namespace linattn::detail::cuda
