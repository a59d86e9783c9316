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
// past_state.
#include "cuda/causal_conv_bulk.cuh"

#include <atomic>
#include <cstdint>

#include "cuda/bulk_copy.cuh"
#include "cuda/causal_conv_common.cuh"
#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda {
namespace {

constexpr int kTileCh = 1024;  // channels per tile: 2 KB of input and 2 KB x (k-1) of state
constexpr int kBulkThreads = 64;
constexpr int kGroups = kTileCh / 8 / kBulkThreads;  // 8-channel groups per thread

// Element e of a run of 16-bit values held two per word.
template <int N>
__device__ __forceinline__ uint32_t half_at(const uint32_t (&a)[N], int e) {
  return (a[e >> 1] >> (16 * (e & 1))) & 0xffffu;
}

template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kBulkThreads) conv_update_bulk_kernel(const CausalConvParams p, int64_t tiles_per_row) {
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
  if (threadIdx.x == 0) {
    const uint32_t xbytes = 2u * nch, sbytes = past ? 2u * nch * KM : 0u;
    bulk::bar_expect(&bar, xbytes + sbytes);
    const uint64_t pol = bulk::evict_first();
    bulk::load(xs, static_cast<const uint16_t*>(p.x) + b * p.x_sb + c0, xbytes, &bar, pol);
    if (past) bulk::load(ss, static_cast<const uint16_t*>(p.past) + b * p.past_sb + c0 * KM, sbytes, &bar, pol);
  }

  // The weights of this thread's groups (8 channels: 8k contiguous values, k 16-byte vectors)
  // and bias, while the tile is in flight.
  uint4 wv[kGroups][KT], bv[kGroups];
#pragma unroll
  for (int gi = 0; gi < kGroups; ++gi) {
    const int gl = threadIdx.x + gi * kBulkThreads;
    if (8 * gl >= nch) continue;
    const int64_t c = c0 + 8 * gl;
    const uint4* wp = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.w) + c * KT);
#pragma unroll
    for (int n = 0; n < KT; ++n) wv[gi][n] = __ldg(wp + n);
    bv[gi] = p.bias ? __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(p.bias) + c))
                    : make_uint4(0, 0, 0, 0);
  }

  bulk::bar_wait(&bar, 0);

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
      ww[4 * n] = wv[gi][n].x; ww[4 * n + 1] = wv[gi][n].y; ww[4 * n + 2] = wv[gi][n].z; ww[4 * n + 3] = wv[gi][n].w;
    }
    const uint32_t bw[4] = {bv[gi].x, bv[gi].y, bv[gi].z, bv[gi].w};
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
      y[ch] = p.silu ? conv_silu<AT>(acc) : acc;
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

  // The generic-proxy writes above become visible to the bulk copies, then one thread stores
  // the tile and waits until the stores have read shared memory before the CTA goes.
  bulk::fence_to_async();
  __syncthreads();
  if (threadIdx.x == 0) {
    bulk::store(static_cast<uint16_t*>(p.y) + b * p.y_sb + c0, xs, 2u * nch);
    if (present) bulk::store(static_cast<uint16_t*>(p.present) + b * p.pres_sb + c0 * KM, ss, 2u * nch * KM);
    bulk::store_wait();
  }
#else
  __trap();  // conv_update_bulk_ok routes only binaries built for sm_90 and newer here
#endif
}

template <int KT, linattn_dtype AT>
void launch_kt(const CausalConvParams& p, cudaStream_t s) {
  const int64_t tiles_per_row = (p.C + kTileCh - 1) / kTileCh;
  conv_update_bulk_kernel<KT, AT><<<static_cast<unsigned>(p.B * tiles_per_row), kBulkThreads, 0, s>>>(p, tiles_per_row);
}

__global__ void bulk_probe_kernel() {}

}  // namespace

bool bulk_copy_available() {
  // Cached per device (0: unknown, 1: no, 2: yes): the binary's PTX level for the device and
  // the device's compute capability.
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return false;
  if (dev < kMaxDevices && cached[dev].load(std::memory_order_relaxed) != 0) {
    return cached[dev].load(std::memory_order_relaxed) == 2;
  }
  int major = 0;
  cudaFuncAttributes fa{};
  const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                  major >= 9 && cudaFuncGetAttributes(&fa, bulk_probe_kernel) == cudaSuccess && fa.ptxVersion >= 90;
  cudaGetLastError();  // a failed query must not surface at the next launch check
  if (dev < kMaxDevices) cached[dev].store(ok ? 2 : 1, std::memory_order_relaxed);
  return ok;
}

namespace {
}  // namespace

bool conv_update_bulk_ok(const CausalConvParams& p) {
  if (p.L != 1 || p.K < 2 || p.K > 4 || p.B <= 0 || p.C <= 0) return false;
  if (p.act_dtype != LINATTN_BFLOAT16 && p.act_dtype != LINATTN_FLOAT16) return false;
  const int km = p.K - 1;
  const auto row16 = [](const void* base, int64_t stride) {
    return aligned16(base, 0, 2) && stride % 8 == 0;
  };
  if (p.C % 8 != 0 || p.x_sc != 1 || p.y_sc != 1 || !row16(p.x, p.x_sb) || !row16(p.y, p.y_sb)) return false;
  if (p.w_sc != p.K || p.w_sk != 1 || !aligned16(p.w, 0, 2)) return false;
  if (p.bias != nullptr && (p.bias_sc != 1 || !aligned16(p.bias, 0, 2))) return false;
  if (p.past != nullptr && (p.past_dtype != p.act_dtype || p.past_sc != km || !row16(p.past, p.past_sb))) {
    return false;
  }
  if (p.present != nullptr &&
      (p.present_dtype != p.act_dtype || p.pres_sc != km || !row16(p.present, p.pres_sb))) {
    return false;
  }
  const int64_t tiles = p.B * ((p.C + kTileCh - 1) / kTileCh);
  return tiles <= 0x7fffffff && bulk_copy_available();
}

Status conv_update_bulk(const CausalConvParams& p, cudaStream_t s) {
  const bool bf16 = p.act_dtype == LINATTN_BFLOAT16;
  with_vector_width(p.K, [&](auto k) {
    constexpr int KT = decltype(k)::value;
    if (bf16) {
      launch_kt<KT, LINATTN_BFLOAT16>(p, s);
    } else {
      launch_kt<KT, LINATTN_FLOAT16>(p, s);
    }
  });
  return launch_status("causal_conv (cuda): update kernel launch");
}

}  // namespace linattn::detail::cuda
