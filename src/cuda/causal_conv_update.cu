// Bulk-copy update kernel of CausalConvWithState: L = 1, 16-bit activations and states.
//
// An update call moves each byte once: the input and the (B, C, k-1) state in, the output and
// the new state out, with a few instructions per channel. As a one-wave register kernel it
// stayed 22% above a plain copy of the same bytes: every thread's loads land at about the same
// time, so the arithmetic runs after the reads and before the writes instead of beside them.
// Here a CTA owns one tile (sequence b, kTileCh channels): one thread issues two bulk copies
// (the tile's input run and state run, both contiguous) into shared memory on an mbarrier;
// the weights load into registers meanwhile; the CTA computes the output and the shifted state
// in place in shared memory, and one thread writes both back with two bulk stores. Sixteen
// tiles share an SM, each on its own barrier, so the tiles whose data lands first compute and
// store while the others still read. Measured on the H100 (B = 256, C = 8192, k = 4): tiles of
// 1024 channels on 64 threads beat 2048 on 128 by 0.2 to 0.4 us, and the evict-first hint on
// the reads gains 0.25 us. Each tile is read before it is written: present_state may alias
// past_state. The kernel is launched overlapped (bulk_copy.cuh): its CTAs take their SMs while
// the previous kernel on the stream finishes, and wait there for its results.
#include "cuda/causal_conv_bulk.cuh"

#include <cstdint>

#include "core/serving_params.hpp"
#include "cuda/bulk_copy.cuh"
#include "cuda/causal_conv_common.cuh"
#include "cuda/cuda_common.cuh"
#include "cuda/serving_flag.cuh"

namespace linattn::detail::cuda {
namespace {

constexpr int kTileCh = 1024;  // channels per tile: 2 KB of input and 2 KB x (k-1) of state
constexpr int kBulkThreads = 64;

// Element e of a run of 16-bit values held two per word.
template <int N>
__device__ __forceinline__ uint32_t half_at(const uint32_t (&a)[N], int e) {
  return (a[e >> 1] >> (16 * (e & 1))) & 0xffffu;
}

#if defined(LINATTN_BULK_COPY)
constexpr int kGroups = kTileCh / 8 / kBulkThreads;  // 8-channel groups per thread

// The weights of this thread's groups (8 channels: 8k contiguous values, k 16-byte vectors) and
// bias, loaded while the tile is in flight.
template <int KT>
struct TileWeights {
  uint4 w[kGroups][KT], bias[kGroups];

  __device__ __forceinline__ void load(const CausalConvParams& p, int64_t c0, int nch) {
#pragma unroll
    for (int gi = 0; gi < kGroups; ++gi) {
      const int gl = threadIdx.x + gi * kBulkThreads;
      if (8 * gl >= nch) continue;
      const int64_t c = c0 + 8 * gl;
      const uint4* wp = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.w) + c * KT);
#pragma unroll
      for (int n = 0; n < KT; ++n) w[gi][n] = __ldg(wp + n);
      bias[gi] = p.bias ? __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.bias) + c))
                        : make_uint4(0, 0, 0, 0);
    }
  }
};

// The tile's arithmetic, in shared memory: xs (the input, nch channels) becomes the output and
// ss (the past state, [nch][k-1]; zeros when !past) the present state (when present).
template <int KT, linattn_dtype AT>
__device__ __forceinline__ void update_tile(uint16_t* xs, uint16_t* ss, int nch, bool past, bool present,
                                            bool silu, const TileWeights<KT>& tw) {
  constexpr int KM = KT - 1;
#pragma unroll
  for (int gi = 0; gi < kGroups; ++gi) {
    const int gl = threadIdx.x + gi * kBulkThreads;
    if (8 * gl >= nch) continue;
    uint4* xv4 = reinterpret_cast<uint4*>(xs) + gl;
    uint4* sv4 = reinterpret_cast<uint4*>(ss) + KM * gl;
    const uint4 xv = *xv4;
    const uint32_t xw[4] = {xv.x, xv.y, xv.z, xv.w};
    uint32_t sw[4 * KM];  // past_state of the 8 channels: element ch * (k-1) + j
#pragma unroll
    for (int n = 0; n < KM; ++n) {
      const uint4 v = past ? sv4[n] : make_uint4(0, 0, 0, 0);
      sw[4 * n] = v.x; sw[4 * n + 1] = v.y; sw[4 * n + 2] = v.z; sw[4 * n + 3] = v.w;
    }
    uint32_t ww[4 * KT];  // w[ch * k + j]
#pragma unroll
    for (int n = 0; n < KT; ++n) {
      const uint4 v = tw.w[gi][n];
      ww[4 * n] = v.x; ww[4 * n + 1] = v.y; ww[4 * n + 2] = v.z; ww[4 * n + 3] = v.w;
    }
    const uint32_t bw[4] = {tw.bias[gi].x, tw.bias[gi].y, tw.bias[gi].z, tw.bias[gi].w};
    float y[8];
#pragma unroll
    for (int ch = 0; ch < 8; ++ch) {
      float acc = fmaf(cvt16<AT>(static_cast<uint16_t>(half_at(ww, ch * KT + KM))),
                       cvt16<AT>(static_cast<uint16_t>(half_at(xw, ch))),
                       cvt16<AT>(static_cast<uint16_t>(half_at(bw, ch))));
#pragma unroll
      for (int m = 0; m < KM; ++m) {
        acc = fmaf(cvt16<AT>(static_cast<uint16_t>(half_at(ww, ch * KT + m))),
                   cvt16<AT>(static_cast<uint16_t>(half_at(sw, ch * KM + m))), acc);
      }
      y[ch] = silu ? conv_silu<AT>(acc) : acc;
    }
    if (present) {
      // present_state = past_state shifted left by one, then this input.
      uint32_t nw[4 * KM];
#pragma unroll
      for (int e = 0; e < 8 * KM; e += 2) {
        auto elem = [&](int q) {
          const int ch = q / KM, j = q % KM;
          return j + 1 < KM ? half_at(sw, ch * KM + j + 1) : half_at(xw, ch);
        };
        nw[e >> 1] = elem(e) | (elem(e + 1) << 16);
      }
#pragma unroll
      for (int n = 0; n < KM; ++n) sv4[n] = make_uint4(nw[4 * n], nw[4 * n + 1], nw[4 * n + 2], nw[4 * n + 3]);
    }
    uint32_t yw[4];
#pragma unroll
    for (int n = 0; n < 4; ++n) {
      yw[n] = static_cast<uint32_t>(cvt16<AT>(y[2 * n])) | (static_cast<uint32_t>(cvt16<AT>(y[2 * n + 1])) << 16);
    }
    *xv4 = make_uint4(yw[0], yw[1], yw[2], yw[3]);
  }
  // The generic-proxy writes above become visible to the bulk stores that follow.
  bulk::fence_to_async();
  __syncthreads();
}

// One thread issues the tile's reads: the input run, and the state run when st is not null.
__device__ __forceinline__ void load_tile(uint16_t* xs, uint16_t* ss, const uint16_t* xg, const uint16_t* sg,
                                          int nch, int km, uint64_t* bar) {
  const uint32_t xbytes = 2u * nch, sbytes = sg ? 2u * nch * km : 0u;
  bulk::bar_expect(bar, xbytes + sbytes);
  const uint64_t pol = l2_evict_first();
  bulk::load(xs, xg, xbytes, bar, pol);
  if (sg) bulk::load(ss, sg, sbytes, bar, pol);
}

// One thread stores the tile (the state when sg is not null) and waits until the stores have
// read shared memory, before the CTA goes.
__device__ __forceinline__ void store_tile(uint16_t* yg, uint16_t* sg, const uint16_t* xs, const uint16_t* ss,
                                           int nch, int km) {
  bulk::store(yg, xs, 2u * nch);
  if (sg) bulk::store(sg, ss, 2u * nch * km);
  bulk::store_wait();
}
#endif

template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kBulkThreads, 16) conv_update_bulk_kernel(const CausalConvParams p, int64_t tiles_per_row) {
#if defined(LINATTN_BULK_COPY)
  constexpr int KM = KT - 1;
  __shared__ __align__(128) uint16_t xs[kTileCh];
  __shared__ __align__(128) uint16_t ss[kTileCh * KM];
  __shared__ __align__(8) uint64_t bar;
  const int64_t b = blockIdx.x / tiles_per_row;
  const int64_t c0 = (blockIdx.x % tiles_per_row) * kTileCh;
  const int nch = static_cast<int>(p.C - c0 < kTileCh ? p.C - c0 : kTileCh);  // a multiple of 8
  const bool past = p.past != nullptr, present = p.present != nullptr;

  if (threadIdx.x == 0) bulk::bar_init(&bar);
  __syncthreads();
  // Launched overlapped: the previous kernel's writes (x, the state) are visible after this.
  bulk::grid_wait();
  if (threadIdx.x == 0) {
    load_tile(xs, ss, static_cast<const uint16_t*>(p.x) + b * p.x_sb + c0,
              past ? static_cast<const uint16_t*>(p.past) + b * p.past_sb + c0 * KM : nullptr, nch, KM, &bar);
  }
  bulk::grid_release();
  TileWeights<KT> tw;
  tw.load(p, c0, nch);
  bulk::bar_wait(&bar, 0);
  update_tile<KT, AT>(xs, ss, nch, past, present, p.silu, tw);
  if (threadIdx.x == 0) {
    store_tile(static_cast<uint16_t*>(p.y) + b * p.y_sb + c0,
               present ? static_cast<uint16_t*>(p.present) + b * p.pres_sb + c0 * KM : nullptr, xs, ss, nch, KM);
  }
#else
  __trap();  // conv_update_bulk_ok routes only binaries built for sm_90 and newer here
#endif
}

// Serving form: row n of the call is sequence n (one token per row, not packed). Thread 0
// issues the input row's read first (it needs no index), then resolves the sequence
// (serving_params.hpp) and only then reads from its read slot of the pool (or zeros); the
// output goes to row n, the new state to its write slot (speculative: the slot of its one
// token). A PAD row gets a zero output; a row whose indices break a rule is skipped whole (no
// state read or written) and raises the flag (from its first tile).
template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kBulkThreads, 16) conv_update_bulk_serving_kernel(const CausalConvServing s,
                                                                                  const StatePools pools,
                                                                                  int64_t tiles_per_row) {
#if defined(LINATTN_BULK_COPY)
  constexpr int KM = KT - 1;
  __shared__ __align__(128) uint16_t xs[kTileCh];
  __shared__ __align__(128) uint16_t ss[kTileCh * KM];
  __shared__ __align__(8) uint64_t bar;
  __shared__ int64_t slots[2];  // read slot (-1: zeros), write slot (-1: none, -2: PAD, -3: error)
  const CausalConvParams& p = s.p;
  const int64_t n = blockIdx.x / tiles_per_row, tile = blockIdx.x % tiles_per_row;
  const int64_t c0 = tile * kTileCh;
  const int nch = static_cast<int>(p.C - c0 < kTileCh ? p.C - c0 : kTileCh);

  if (threadIdx.x == 0) {
    bulk::bar_init(&bar);
    const uint64_t pol = l2_evict_first();
    bulk::bar_expect_more(&bar, 2u * nch);
    bulk::load(xs, static_cast<const uint16_t*>(p.x) + n * p.x_sb + c0, 2u * nch, &bar, pol);
    ResolvedSequence r;
    int64_t rd = -1, wr = -3;
    if (!resolve_sequence(s.ix, n, &r)) {
      if (tile == 0) raise_serving_error(s.ix.error_flag, n);
    } else if (r.pad) {
      wr = -2;
    } else {
      rd = pools.rd != nullptr ? r.read : -1;
      wr = s.ix.spec ? s.ix.state_indices.at(n, 0) : r.write;
      if (rd >= 0) {
        bulk::bar_expect_more(&bar, 2u * nch * KM);
        bulk::load(ss, static_cast<const uint16_t*>(pools.rd) + rd * pools.rd_sb + c0 * KM, 2u * nch * KM, &bar,
                   pol);
      }
    }
    bulk::bar_arrive(&bar);
    slots[0] = rd;
    slots[1] = wr;
  }
  TileWeights<KT> tw;
  tw.load(p, c0, nch);
  __syncthreads();
  const int64_t rd = slots[0], wr = slots[1];
  bulk::bar_wait(&bar, 0);  // also before leaving: the input read lands in this CTA's memory
  if (wr == -3) return;
  if (wr == -2) {
    uint4* yv = reinterpret_cast<uint4*>(static_cast<uint16_t*>(p.y) + n * p.y_sb + c0);
    for (int v = threadIdx.x; v < nch / 8; v += kBulkThreads) yv[v] = make_uint4(0, 0, 0, 0);
    return;
  }
  update_tile<KT, AT>(xs, ss, nch, rd >= 0, wr >= 0, p.silu, tw);
  if (threadIdx.x == 0) {
    store_tile(static_cast<uint16_t*>(p.y) + n * p.y_sb + c0,
               wr >= 0 ? static_cast<uint16_t*>(pools.wr) + wr * pools.wr_sb + c0 * KM : nullptr, xs, ss, nch, KM);
  }
#else
  __trap();  // conv_update_bulk_serving_ok routes only binaries built for sm_90 and newer here
#endif
}

template <int KT, linattn_dtype AT>
void launch_kt(const CausalConvParams& p, cudaStream_t s) {
  const int64_t tiles_per_row = (p.C + kTileCh - 1) / kTileCh;
  (void)launch_overlapped(conv_update_bulk_kernel<KT, AT>, static_cast<unsigned>(p.B * tiles_per_row), kBulkThreads,
                          s, p, tiles_per_row);
}

template <int KT, linattn_dtype AT>
void launch_serving_kt(const CausalConvServing& sv, const StatePools& pools, cudaStream_t s) {
  const int64_t tiles_per_row = (sv.p.C + kTileCh - 1) / kTileCh;
  conv_update_bulk_serving_kernel<KT, AT>
      <<<static_cast<unsigned>(sv.ix.N * tiles_per_row), kBulkThreads, 0, s>>>(sv, pools, tiles_per_row);
}

// What both forms need of rows_n rows of the input and output, the weights and the bias.
bool rows_ok(const CausalConvParams& p, int64_t rows_n) {
  if (rows_n <= 0 || !bulk_io_ok(p)) return false;
  if (p.w_sc != p.K || p.w_sk != 1 || !aligned16(p.w, 0, 2)) return false;
  if (p.bias != nullptr && (p.bias_sc != 1 || !aligned16(p.bias, 0, 2))) return false;
  return rows_n * ((p.C + kTileCh - 1) / kTileCh) <= 0x7fffffff;
}

// A state (or pool) of the activation dtype with [C][k-1] rows starting 16-byte aligned.
bool state_ok(const CausalConvParams& p, const void* base, linattn_dtype dt, int64_t sb, int64_t sc) {
  return dt == p.act_dtype && sc == p.K - 1 && row16(base, sb);
}

}  // namespace

bool conv_update_bulk_ok(const CausalConvParams& p) {
  if (p.L != 1 || !rows_ok(p, p.B)) return false;
  if (p.past != nullptr && !state_ok(p, p.past, p.past_dtype, p.past_sb, p.past_sc)) return false;
  if (p.present != nullptr && !state_ok(p, p.present, p.present_dtype, p.pres_sb, p.pres_sc)) return false;
  return bulk_copy_available();
}

Status conv_update_bulk(const CausalConvParams& p, cudaStream_t s) {
  with_bulk_types(p, [&](auto kt, auto at) { launch_kt<decltype(kt)::value, decltype(at)::value>(p, s); });
  return launch_status("CausalConvWithState (cuda): update kernel launch");
}

bool conv_update_bulk_serving_ok(const CausalConvServing& sv, const StatePools& pools) {
  const CausalConvParams& p = sv.p;
  if (sv.ix.packed || sv.ix.T != 1 || !rows_ok(p, sv.ix.N)) return false;
  if (pools.rd != nullptr && !state_ok(p, pools.rd, pools.rd_dtype, pools.rd_sb, pools.rd_sc)) return false;
  if (pools.wr == nullptr || !state_ok(p, pools.wr, pools.wr_dtype, pools.wr_sb, pools.wr_sc)) return false;
  return bulk_copy_available();
}

Status conv_update_bulk_serving(const CausalConvServing& sv, const StatePools& pools, cudaStream_t s) {
  with_bulk_types(sv.p, [&](auto kt, auto at) {
    launch_serving_kt<decltype(kt)::value, decltype(at)::value>(sv, pools, s);
  });
  return launch_status("CausalConvWithState (cuda): serving update kernel launch");
}

}  // namespace linattn::detail::cuda
