// CausalConvWithState on CUDA. Kernels, in the order launch_for_act tries them: the bulk-copy
// kernels for 16-bit activations on sm_90 (update, L = 1: causal_conv_update.cu; prefill with
// contiguous channels: causal_conv_cl_bulk.cu), an update kernel for L = 1 with contiguous
// channels (conv_update_kernel), a warp-striped prefill for channels-first rows with unit time
// stride (conv_stripe_kernel), a prefill for contiguous channels with L > kUpdateMaxL
// (conv_cl_kernel), a channel-vector kernel for the other contiguous-channel layouts
// (conv_vec_kernel), and the general kernel below, which takes any strides and widths. The prefill kernels apply SiLU through conv_silu (approximate exp and
// division for 16-bit outputs: it made the prefill issue-bound otherwise).
//
// A thread owns one channel of one sequence over a run of consecutive time steps (the whole of
// L in update calls, kTile steps in prefill), sliding a window of the k-1 previous inputs in
// registers. Channels-last: neighbouring threads take neighbouring channels, so every load
// and store of a warp is contiguous. Channels-first: neighbouring threads take neighbouring
// runs of one channel and move them as 16-byte vectors. Only the thread of the first run of a
// channel reads past_state and writes present_state (runs are at least k-1 long, so no other
// run reaches back into past_state): present_state may alias past_state.
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/backend.hpp"
#include "cuda/causal_conv_common.cuh"
#include "cuda/causal_conv_bulk.cuh"
#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda {

namespace {

constexpr int kConvThreads = 256;
constexpr int kTile = 32;          // time steps per thread in prefill (64 bytes of bf16 in flight)
constexpr int kUpdateMaxL = 16;    // up to this L one thread covers the whole call
constexpr int kMaxGenericK = 64;   // window bound of the runtime-width kernel

// KT: kernel width, or 0 for a runtime width up to kMaxGenericK.
template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kConvThreads) conv_kernel(const CausalConvParams p, int64_t run,
                                                            int64_t nruns, int64_t total) {
  constexpr int KW = KT > 0 ? KT : kMaxGenericK;
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * kConvThreads + threadIdx.x;
  if (idx >= total) return;
  int64_t b, c, r;
  // 64-bit division costs tens of instructions; nearly every launch indexes in 32 bits.
  if (total <= 0xffffffffll) {
    const uint32_t i32 = static_cast<uint32_t>(idx), C32 = static_cast<uint32_t>(p.C);
    const uint32_t n32 = static_cast<uint32_t>(nruns);
    if (p.channels_last) {
      c = i32 % C32;
      const uint32_t rest = i32 / C32;
      r = rest % n32;
      b = rest / n32;
    } else {
      r = i32 % n32;
      const uint32_t rest = i32 / n32;
      c = rest % C32;
      b = rest / C32;
    }
  } else if (p.channels_last) {
    c = idx % p.C;
    const int64_t rest = idx / p.C;
    r = rest % nruns;
    b = rest / nruns;
  } else {
    r = idx % nruns;
    const int64_t rest = idx / nruns;
    c = rest % p.C;
    b = rest / p.C;
  }
  const int k = KT > 0 ? KT : p.K;
  const int64_t l0 = r * run;
  const int64_t l1 = l0 + run < p.L ? l0 + run : p.L;
  const int64_t xb = b * p.x_sb + c * p.x_sc;
  const int64_t yb = b * p.y_sb + c * p.y_sc;

  float w[KW];
#pragma unroll
  for (int j = 0; j < KW; ++j) w[j] = j < k ? ld<AT>(p.w, c * p.w_sc + j * p.w_sk) : 0.f;
  const float bias = p.bias != nullptr ? ld<AT>(p.bias, c * p.bias_sc) : 0.f;

  // win[m] = P at time l0 - (k-1) + m: the k-1 inputs before this run (negative times are
  // past_state, or zeros without it).
  float win[KW];
  const int64_t past_b = b * p.past_sb + c * p.past_sc;
#pragma unroll
  for (int m = 0; m < KW - 1; ++m) {
    if (m >= k - 1) break;
    const int64_t tt = l0 - (k - 1) + m;
    if (tt >= 0) win[m] = ld<AT>(p.x, xb + tt * p.x_sl);
    else win[m] = p.past != nullptr ? ld_rt(p.past, past_b + (k - 1) + tt, p.past_dtype) : 0.f;
  }

  // present_state = the last k-1 columns of P, written by the first run after it has read all
  // of past_state that it needs.
  if (r == 0 && k > 1 && p.present != nullptr) {
    const int64_t pres_b = b * p.pres_sb + c * p.pres_sc;
    float pres[KW];
#pragma unroll
    for (int j = 0; j < KW - 1; ++j) {
      if (j >= k - 1) break;
      const int64_t tt = p.L - (k - 1) + j;
      if (tt >= 0) {
        pres[j] = ld<AT>(p.x, xb + tt * p.x_sl);
      } else {
        // win[L + j] (this is the first run, so win holds past_state), selected with constant
        // indices so that win stays in registers.
        float v = 0.f;
#pragma unroll
        for (int m = 0; m < KW - 1; ++m)
          if (m == p.L + j) v = win[m];
        pres[j] = v;
      }
    }
#pragma unroll
    for (int j = 0; j < KW - 1; ++j) {
      if (j >= k - 1) break;
      st_rt(p.present, pres_b + j, p.present_dtype, pres[j]);
    }
  }

  // y[l] = act(bias + sum_j w[j] * P[l + j]).
  auto step = [&](float xv) {
    float acc = fmaf(w[k - 1], xv, bias);
#pragma unroll
    for (int m = 0; m < KW - 1; ++m) {
      if (m >= k - 1) break;
      acc = fmaf(w[m], win[m], acc);
    }
#pragma unroll
    for (int m = 0; m + 1 < KW - 1; ++m) {
      if (m + 1 >= k - 1) break;
      win[m] = win[m + 1];
    }
    if (k > 1) win[k - 2] = xv;
    return p.silu ? conv_silu<AT>(acc) : acc;
  };

  constexpr int esize = AT == LINATTN_FLOAT32 ? 4 : 2;
  if (!p.channels_last && l1 - l0 == kTile && p.x_sl == 1 && p.y_sl == 1 &&
      aligned16(p.x, xb + l0, esize) && aligned16(p.y, yb + l0, esize)) {
    float xs[kTile];
    ld_run<AT, kTile>(p.x, xb + l0, xs);
#pragma unroll
    for (int n = 0; n < kTile; ++n) xs[n] = step(xs[n]);
    st_run<AT, kTile>(p.y, yb + l0, xs);
    return;
  }
  for (int64_t l = l0; l < l1; ++l) st<AT>(p.y, yb + l * p.y_sl, step(ld<AT>(p.x, xb + l * p.x_sl)));
}

// Warp-striped prefill for channels-first layouts with unit time stride: a warp owns a segment
// of kStripeU * 32 vectors of one (sequence, channel) row, and lane i takes vector u * 32 + i,
// so every load and store instruction of the warp moves 512 contiguous bytes. A vector is
// 16 bytes (8 steps of a 16-bit type, 4 of float32). All kStripeU loads are issued before any
// arithmetic (128 bytes in flight per thread, kept packed). The k-1 inputs before a lane's
// vector are the tail of its left neighbour's vector (a shuffle), lane 31's previous vector
// for lane 0, and for the first vector of the segment, inputs before the segment (or
// past_state) that lane 0 loads itself. Only the warp of the first segment of a row reads
// past_state, and it writes present_state after that read (present_state may alias it).
constexpr int kStripeU = 8;

template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kConvThreads) conv_stripe_kernel(const CausalConvParams p, uint32_t nseg,
                                                                   uint32_t nwarps) {
  constexpr int KM = KT - 1;
  constexpr int E = AT == LINATTN_FLOAT32 ? 4 : 8;  // steps per 16-byte vector
  using V16 = typename std::conditional<AT == LINATTN_FLOAT32, float4, uint4>::type;
  const uint32_t warp = blockIdx.x * (kConvThreads / 32) + threadIdx.x / 32;
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (warp >= nwarps) return;  // whole warps only: the shuffles below need all 32 lanes
  const uint32_t seg = warp % nseg, rest = warp / nseg;
  const int64_t c = rest % static_cast<uint32_t>(p.C), b = rest / static_cast<uint32_t>(p.C);
  const int64_t xb = b * p.x_sb + c * p.x_sc, yb = b * p.y_sb + c * p.y_sc;
  const int64_t s0 = static_cast<int64_t>(seg) * (kStripeU * 32 * E);  // first step of the segment

  V16 raw[kStripeU];
#pragma unroll
  for (int u = 0; u < kStripeU; ++u) {
    const int64_t l = s0 + (u * 32 + lane) * E;
    if (l < p.L) raw[u] = __ldg(reinterpret_cast<const V16*>(static_cast<const char*>(p.x) + (xb + l) * (16 / E)));
    else raw[u] = V16{};  // past L: computed on (shuffles need every lane), never stored
  }
  float w[KT];
#pragma unroll
  for (int j = 0; j < KT; ++j) w[j] = ld<AT>(p.w, c * p.w_sc + j * p.w_sk);
  const float bias = p.bias != nullptr ? ld<AT>(p.bias, c * p.bias_sc) : 0.f;

  // halo[m] = P at step s0 - (k-1) + m, needed by lane 0 only.
  float halo[KM > 0 ? KM : 1];
#pragma unroll
  for (int m = 0; m < KM; ++m) halo[m] = 0.f;
  if (lane == 0) {
    const int64_t past_b = b * p.past_sb + c * p.past_sc;
#pragma unroll
    for (int m = 0; m < KM; ++m) {
      const int64_t tt = s0 - KM + m;
      if (tt >= 0) halo[m] = ld<AT>(p.x, xb + tt);
      else if (p.past != nullptr) halo[m] = ld_rt(p.past, past_b + KM + tt, p.past_dtype);
    }
    // present_state = the last k-1 inputs (L >= k-1 here), written after past_state was read.
    if (seg == 0 && p.present != nullptr) {
      const int64_t pres_b = b * p.pres_sb + c * p.pres_sc;
#pragma unroll
      for (int j = 0; j < KM; ++j) st_rt(p.present, pres_b + j, p.present_dtype, ld<AT>(p.x, xb + p.L - KM + j));
    }
  }

  float prev_tail[KM > 0 ? KM : 1];  // this lane's previous vector's last k-1 inputs
#pragma unroll
  for (int m = 0; m < KM; ++m) prev_tail[m] = halo[m];
#pragma unroll
  for (int u = 0; u < kStripeU; ++u) {
    float xs[E];
    if constexpr (AT == LINATTN_FLOAT32) {
      xs[0] = raw[u].x; xs[1] = raw[u].y; xs[2] = raw[u].z; xs[3] = raw[u].w;
    } else {
      unpack4<AT>(make_uint2(raw[u].x, raw[u].y), xs);
      unpack4<AT>(make_uint2(raw[u].z, raw[u].w), xs + 4);
    }
    // win[m] = P at the k-1 steps before this vector.
    float win[KM > 0 ? KM : 1];
#pragma unroll
    for (int m = 0; m < KM; ++m) {
      const float left = __shfl_up_sync(0xffffffffu, xs[E - KM + m], 1);
      const float wrap = __shfl_sync(0xffffffffu, prev_tail[m], 31);
      win[m] = lane == 0 ? (u == 0 ? halo[m] : wrap) : left;
      prev_tail[m] = xs[E - KM + m];
    }
    float ys[E];
#pragma unroll
    for (int n = 0; n < E; ++n) {
      float acc = fmaf(w[KM], xs[n], bias);
#pragma unroll
      for (int j = 0; j < KM; ++j) {
        // P at step n - KM + j: the window for negative positions, this vector otherwise.
        const int t = n - KM + j;
        acc = fmaf(w[j], t < 0 ? win[KM + t] : xs[t], acc);
      }
      ys[n] = p.silu ? conv_silu<AT>(acc) : acc;
    }
    const int64_t l = s0 + (u * 32 + lane) * E;
    if (l < p.L) st_run<AT, E>(p.y, yb + l, ys);
  }
}

// Channel-vector kernel, for layouts whose channels are contiguous (channels-last, and every
// update call with L = 1, where (B, C, 1) and (B, 1, C) are the same memory). A thread owns
// kVec = 8 consecutive channels of one sequence over a run of time steps, and moves inputs and
// outputs as 16-byte vectors (two for float32); neighbouring threads take neighbouring channel
// groups, so a warp's access at one time step is 512 contiguous bytes (bf16). The state of the
// group is 8 * (k-1) contiguous elements when the state's channel stride is k-1: a few vector
// accesses instead of strided scalars. Runs are at least k-1 long, so, as in conv_kernel, only
// the first run of a channel group touches past_state and present_state. Two blocks per SM:
// 8 channels of weights, bias and window stay in registers (about 100 of them).
constexpr int kVec = 8;
constexpr int kVecRun = 16;   // time steps per thread in prefill
constexpr int kVecChunk = 2;  // time steps whose loads are issued together (registers)

struct VecLayout {
  bool w_vec, bias_vec, past_vec, pres_vec;
};

// Weights w[j][ch] and bias[ch] of NCH consecutive channels from c, in float32 (the vector
// kernels hold them for a whole run of time steps).
template <int KT, linattn_dtype AT, int NCH>
__device__ __forceinline__ void load_channel_weights(const CausalConvParams& p, const VecLayout& vl,
                                                     int64_t c, float (&w)[KT][NCH],
                                                     float (&bias)[NCH]) {
  float wf[NCH * KT];
  if (vl.w_vec) {
    ld_run<AT, NCH * KT>(p.w, c * KT, wf);
  } else {
#pragma unroll
    for (int ch = 0; ch < NCH; ++ch)
#pragma unroll
      for (int j = 0; j < KT; ++j) wf[ch * KT + j] = ld<AT>(p.w, (c + ch) * p.w_sc + j * p.w_sk);
  }
#pragma unroll
  for (int ch = 0; ch < NCH; ++ch)
#pragma unroll
    for (int j = 0; j < KT; ++j) w[j][ch] = wf[ch * KT + j];
  if (p.bias == nullptr) {
#pragma unroll
    for (int ch = 0; ch < NCH; ++ch) bias[ch] = 0.f;
  } else if (vl.bias_vec) {
    ld_run<AT, NCH>(p.bias, c, bias);
  } else {
#pragma unroll
    for (int ch = 0; ch < NCH; ++ch) bias[ch] = ld<AT>(p.bias, (c + ch) * p.bias_sc);
  }
}

// The work item of a prefill thread: channel groups of `width` channels vary fastest, then runs
// of `run` steps, then batch rows. c: its first channel, l0: its first step.
struct PrefillItem {
  int64_t b, c, l0;
  uint32_t r;
};
__device__ __forceinline__ PrefillItem prefill_item(uint32_t idx, uint32_t ngroups, uint32_t nruns,
                                                    int width, int run) {
  const uint32_t g = idx % ngroups, rest = idx / ngroups;
  const uint32_t r = rest % nruns;
  return PrefillItem{rest / nruns, static_cast<int64_t>(g) * width, static_cast<int64_t>(r) * run, r};
}

template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kConvThreads, 2) conv_vec_kernel(const CausalConvParams p, VecLayout vl,
                                                                int run, uint32_t nruns,
                                                                uint32_t ngroups, uint32_t total) {
  constexpr int KM = KT - 1;  // state columns
  const uint32_t idx = blockIdx.x * kConvThreads + threadIdx.x;
  if (idx >= total) return;
  const auto [b, c, l0, r] = prefill_item(idx, ngroups, nruns, kVec, run);
  const int64_t l1 = l0 + run < p.L ? l0 + run : p.L;
  const int64_t xb = b * p.x_sb + c, yb = b * p.y_sb + c;

  float w[KT][kVec], bias[kVec];
  load_channel_weights<KT, AT>(p, vl, c, w, bias);

  // win[m][ch] = P at time l0 - (k-1) + m.
  float win[KM > 0 ? KM : 1][kVec];
  float pst[KM > 0 ? kVec * KM : 1];  // past_state of the group, [ch * (k-1) + j]
  if (r == 0) {
    if (p.past == nullptr) {
#pragma unroll
      for (int n = 0; n < kVec * KM; ++n) pst[n] = 0.f;
    } else if (vl.past_vec) {
      // In-place states are read with plain loads (ld_run uses the read-only path): this
      // thread is the only reader and writer of these elements, and reads them first.
      const int64_t at = b * p.past_sb + c * KM;
      if constexpr (AT == LINATTN_FLOAT32) {
#pragma unroll
        for (int n = 0; n < kVec * KM / 4; ++n) {
          const float4 v = reinterpret_cast<const float4*>(static_cast<const float*>(p.past) + at)[n];
          pst[4 * n] = v.x; pst[4 * n + 1] = v.y; pst[4 * n + 2] = v.z; pst[4 * n + 3] = v.w;
        }
      } else {
#pragma unroll
        for (int n = 0; n < kVec * KM / 8; ++n) ld8_rt(p.past, at + 8 * n, AT, pst + 8 * n);
      }
    } else {
#pragma unroll
      for (int ch = 0; ch < kVec; ++ch)
#pragma unroll
        for (int j = 0; j < KM; ++j)
          pst[ch * KM + j] = ld_rt(p.past, b * p.past_sb + (c + ch) * p.past_sc + j, p.past_dtype);
    }
#pragma unroll
    for (int m = 0; m < KM; ++m)
#pragma unroll
      for (int ch = 0; ch < kVec; ++ch) win[m][ch] = pst[ch * KM + m];

  } else {
#pragma unroll
    for (int m = 0; m < KM; ++m) ld_run<AT, kVec>(p.x, xb + (l0 - KM + m) * p.x_sl, win[m]);
  }

  for (int64_t l = l0; l < l1; l += kVecChunk) {
    float xs[kVecChunk][kVec];
#pragma unroll
    for (int s = 0; s < kVecChunk; ++s)
      if (l + s < l1) ld_run<AT, kVec>(p.x, xb + (l + s) * p.x_sl, xs[s]);
#pragma unroll
    for (int s = 0; s < kVecChunk; ++s) {
      if (l + s >= l1) break;
      float ys[kVec];
#pragma unroll
      for (int ch = 0; ch < kVec; ++ch) {
        float acc = fmaf(w[KT - 1][ch], xs[s][ch], bias[ch]);
#pragma unroll
        for (int m = 0; m < KM; ++m) acc = fmaf(w[m][ch], win[m][ch], acc);
#pragma unroll
        for (int m = 0; m + 1 < KM; ++m) win[m][ch] = win[m + 1][ch];
        if (KM > 0) win[KM - 1][ch] = xs[s][ch];
        ys[ch] = p.silu ? conv_silu<AT>(acc) : acc;
      }
      st_run<AT, kVec>(p.y, yb + (l + s) * p.y_sl, ys);
    }
  }

  // present_state = the last k-1 columns of P. With a single run (every update call) they are
  // the window this thread ends with (past_state columns included when L < k-1), so the state
  // is read once and written once; otherwise they are inputs (L > run >= k-1), read again.
  if (r != 0 || p.present == nullptr || KM == 0) return;
  float pres[kVec * (KM > 0 ? KM : 1)];
#pragma unroll
  for (int j = 0; j < KM; ++j) {
    float xv[kVec];
    if (nruns == 1) {
#pragma unroll
      for (int ch = 0; ch < kVec; ++ch) xv[ch] = win[j][ch];
    } else {
      ld_run<AT, kVec>(p.x, xb + (p.L - KM + j) * p.x_sl, xv);
    }
#pragma unroll
    for (int ch = 0; ch < kVec; ++ch) pres[ch * KM + j] = xv[ch];
  }
  if (vl.pres_vec) {
    st_run<AT, kVec * KM>(p.present, b * p.pres_sb + c * KM, pres);
  } else {
#pragma unroll
    for (int ch = 0; ch < kVec; ++ch)
#pragma unroll
      for (int j = 0; j < KM; ++j)
        st_rt(p.present, b * p.pres_sb + (c + ch) * p.pres_sc + j, p.present_dtype, pres[ch * KM + j]);
  }
}

// Channels-last prefill (contiguous channels, L > kUpdateMaxL): a thread owns kClG = 4
// channels of one sequence over ClSteps consecutive time steps, and issues every load it needs
// before any arithmetic: its input vectors and the k-1 vectors before them (the halo, read
// again by this thread rather than carried: the thread of the previous steps is resident at the
// same time, so the halo is an L2 hit, not extra device-memory traffic). 16-bit inputs stay
// packed until used: 19 x 8 bytes in flight per thread at k = 4 for about 90 registers (two
// blocks per SM), where the channel-vector kernel above kept two steps in flight. Neighbouring
// threads take neighbouring channel groups, so each load and store instruction of a warp is
// 256 contiguous bytes (bf16). Halo steps before 0 are past_state, read by the threads of the
// first steps only, which also write present_state after that read (present_state may alias
// past_state; L > k-1, so its columns are all inputs).
constexpr int kClG = 4;
template <linattn_dtype AT>
struct ClSteps {
  static constexpr int value = AT == LINATTN_FLOAT32 ? 8 : 16;  // float32 vectors take 2x registers
};

template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kConvThreads, 2) conv_cl_kernel(const CausalConvParams p, VecLayout vl,
                                                               uint32_t nruns, uint32_t ngroups,
                                                               uint32_t total) {
  constexpr int KM = KT - 1;
  constexpr int S = ClSteps<AT>::value;
  using P4 = typename Packed4<AT>::T;
  const uint32_t idx = blockIdx.x * kConvThreads + threadIdx.x;
  if (idx >= total) return;
  const auto [b, c, l0, r] = prefill_item(idx, ngroups, nruns, kClG, S);
  const int64_t xb = b * p.x_sb + c, yb = b * p.y_sb + c;

  // raw[s]: the 4 channels at step l0 - KM + s, as loaded (zeros outside [0, L)).
  P4 raw[KM + S];
#pragma unroll
  for (int s = 0; s < KM + S; ++s) {
    const int64_t l = l0 - KM + s;
    if (l >= 0 && l < p.L) {
      raw[s] = __ldg(reinterpret_cast<const P4*>(static_cast<const char*>(p.x) +
                                                 (xb + l * p.x_sl) * (AT == LINATTN_FLOAT32 ? 4 : 2)));
    } else {
      raw[s] = P4{};
    }
  }

  float w[KT][kClG], bias[kClG];
  load_channel_weights<KT, AT>(p, vl, c, w, bias);

  // win[m][ch] = P at step l0 - KM + m: past_state (or zeros) for the first steps, since
  // L > KM no halo step of the first run is an input.
  float win[KM > 0 ? KM : 1][kClG];
#pragma unroll
  for (int m = 0; m < KM; ++m) {
    if (r != 0) {
      unpack_packed<AT>(raw[m], win[m]);
    } else {
#pragma unroll
      for (int ch = 0; ch < kClG; ++ch)
        win[m][ch] = p.past != nullptr ? ld_rt(p.past, b * p.past_sb + (c + ch) * p.past_sc + m, p.past_dtype) : 0.f;
    }
  }

#pragma unroll
  for (int s = 0; s < S; ++s) {
    const int64_t l = l0 + s;
    if (l >= p.L) break;
    float xs[kClG], ys[kClG];
    unpack_packed<AT>(raw[KM + s], xs);
#pragma unroll
    for (int ch = 0; ch < kClG; ++ch) {
      float acc = fmaf(w[KM][ch], xs[ch], bias[ch]);
#pragma unroll
      for (int m = 0; m < KM; ++m) acc = fmaf(w[m][ch], win[m][ch], acc);
#pragma unroll
      for (int m = 0; m + 1 < KM; ++m) win[m][ch] = win[m + 1][ch];
      if (KM > 0) win[KM - 1][ch] = xs[ch];
      ys[ch] = p.silu ? conv_silu<AT>(acc) : acc;
    }
    st_run<AT, kClG>(p.y, yb + l * p.y_sl, ys);
  }

  // present_state = the last k-1 inputs, written by the first run after its past_state read.
  if (r != 0 || p.present == nullptr) return;
#pragma unroll
  for (int j = 0; j < KM; ++j) {
    float xv[kClG];
    ld_run<AT, kClG>(p.x, xb + (p.L - KM + j) * p.x_sl, xv);
#pragma unroll
    for (int ch = 0; ch < kClG; ++ch)
      st_rt(p.present, b * p.pres_sb + (c + ch) * p.pres_sc + j, p.present_dtype, xv[ch]);
  }
}

// Update kernel (L = 1, contiguous channels): a thread owns 4 channels of NR sequences. It
// issues the input and state loads of all NR rows before any arithmetic and keeps them packed
// (16-bit types stay 16-bit until used), so one thread has NR * (4 + 4 (k-1)) elements in
// flight for about 64 registers: four 256-thread blocks per SM, and the whole B = 256, C = 8192
// call fits in one wave of a 132-SM GPU instead of four. The weights and bias are loaded once
// for the NR rows. Each row's state is read then written by this thread only, so
// present_state may alias past_state.
constexpr int kUpdVec = 4;
template <int KT, linattn_dtype AT, int NR>
__global__ void __launch_bounds__(kConvThreads, 4) conv_update_kernel(const CausalConvParams p, VecLayout vl,
                                                                    uint32_t ngroups, uint32_t total) {
  constexpr int KM = KT - 1;
  using P4 = typename Packed4<AT>::T;
  const uint32_t idx = blockIdx.x * kConvThreads + threadIdx.x;
  if (idx >= total) return;
  const int64_t c = static_cast<int64_t>(idx % ngroups) * kUpdVec;
  const int64_t b0 = static_cast<int64_t>(idx / ngroups) * NR;

  P4 xr[NR], sr[NR][KM];
#pragma unroll
  for (int i = 0; i < NR; ++i) {
    if (b0 + i >= p.B) break;
    if constexpr (AT == LINATTN_FLOAT32) {
      xr[i] = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(p.x) + (b0 + i) * p.x_sb + c));
    } else {
      xr[i] = __ldg(reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(p.x) + (b0 + i) * p.x_sb + c));
    }
    if (p.past != nullptr && vl.past_vec) {
#pragma unroll
      for (int n = 0; n < KM; ++n) sr[i][n] = ld_packed<AT>(p.past, (b0 + i) * p.past_sb + c * KM + 4 * n);
    }
  }

  ChannelWeights4<KT, AT> wt;
  static_assert(ChannelWeights4<KT, AT>::kG == kUpdVec, "one weight group per channel vector");
  wt.load(p, vl.w_vec, vl.bias_vec, c);

#pragma unroll
  for (int i = 0; i < NR; ++i) {
    const int64_t b = b0 + i;
    if (b >= p.B) break;
    // pst[ch * (k-1) + j]: past_state of the 4 channels.
    float pst[kUpdVec * KM], xv[kUpdVec], ys[kUpdVec];
    if (p.past == nullptr) {
#pragma unroll
      for (int n = 0; n < kUpdVec * KM; ++n) pst[n] = 0.f;
    } else if (vl.past_vec) {
#pragma unroll
      for (int n = 0; n < KM; ++n) unpack_packed<AT>(sr[i][n], pst + 4 * n);
    } else {
#pragma unroll
      for (int ch = 0; ch < kUpdVec; ++ch)
#pragma unroll
        for (int j = 0; j < KM; ++j)
          pst[ch * KM + j] = ld_rt(p.past, b * p.past_sb + (c + ch) * p.past_sc + j, p.past_dtype);
    }
    unpack_packed<AT>(xr[i], xv);
#pragma unroll
    for (int ch = 0; ch < kUpdVec; ++ch) {
      float acc = fmaf(wt.get(ch * KT + KM), xv[ch], wt.bias[ch]);
#pragma unroll
      for (int m = 0; m < KM; ++m) acc = fmaf(wt.get(ch * KT + m), pst[ch * KM + m], acc);
      // The accurate SiLU: the approximate one measured 0.9 us slower here (more spills at
      // the 64-register cap), and this kernel is not issue-bound.
      ys[ch] = p.silu ? silu(acc) : acc;
    }
    st_run<AT, kUpdVec>(p.y, b * p.y_sb + c, ys);
    if (p.present == nullptr) continue;
    // present_state = past_state shifted left by one, then this input.
    float pres[kUpdVec * KM];
#pragma unroll
    for (int ch = 0; ch < kUpdVec; ++ch) {
#pragma unroll
      for (int j = 0; j + 1 < KM; ++j) pres[ch * KM + j] = pst[ch * KM + j + 1];
      pres[ch * KM + KM - 1] = xv[ch];
    }
    if (vl.pres_vec) {
      st_run<AT, kUpdVec * KM>(p.present, b * p.pres_sb + c * KM, pres);
    } else {
#pragma unroll
      for (int ch = 0; ch < kUpdVec; ++ch)
#pragma unroll
        for (int j = 0; j < KM; ++j)
          st_rt(p.present, b * p.pres_sb + (c + ch) * p.pres_sc + j, p.present_dtype, pres[ch * KM + j]);
    }
  }
}

// The channel-vector kernel applies when channels are contiguous in input and output and every
// group of 8 starts 16-byte aligned at every (b, l).
bool vec_layout_ok(const CausalConvParams& p, int esize) {
  if (p.x_sc != 1 || p.y_sc != 1 || p.C % kVec != 0) return false;
  const bool strides = p.x_sb % kVec == 0 && p.y_sb % kVec == 0 &&
                       (p.L <= 1 || (p.x_sl % kVec == 0 && p.y_sl % kVec == 0));
  return strides && aligned16(p.x, 0, esize) && aligned16(p.y, 0, esize);
}

VecLayout vec_layout(const CausalConvParams& p, int esize) {
  const int km = p.K - 1;
  VecLayout vl;
  vl.w_vec = p.w_sc == p.K && p.w_sk == 1 && aligned16(p.w, 0, esize);
  vl.bias_vec = p.bias_sc == 1 && aligned16(p.bias, 0, esize);
  vl.past_vec = p.past_dtype == p.act_dtype && p.past_sc == km && p.past_sb % kVec == 0 &&
                aligned16(p.past, 0, esize);
  vl.pres_vec = p.present_dtype == p.act_dtype && p.pres_sc == km && p.pres_sb % kVec == 0 &&
                aligned16(p.present, 0, esize);
  return vl;
}

struct VecGrid {
  int64_t run, nruns, ngroups, total;
};

VecGrid vec_grid(const CausalConvParams& p) {
  VecGrid g;
  g.run = p.L <= kUpdateMaxL ? p.L : kVecRun;
  if (g.run < p.K - 1) g.run = p.K - 1;
  if (g.run < 1) g.run = 1;
  g.nruns = p.L > 0 ? (p.L + g.run - 1) / g.run : 1;
  g.ngroups = p.C / kVec;
  g.total = p.B * g.ngroups * g.nruns;
  return g;
}

template <int KT, linattn_dtype AT>
void launch_vec(const CausalConvParams& p, cudaStream_t s) {
  constexpr int esize = AT == LINATTN_FLOAT32 ? 4 : 2;
  const VecGrid g = vec_grid(p);
  const int64_t run = g.run, nruns = g.nruns, ngroups = g.ngroups, total = g.total;
  const int64_t blocks = (total + kConvThreads - 1) / kConvThreads;
  conv_vec_kernel<KT, AT><<<static_cast<unsigned>(blocks), kConvThreads, 0, s>>>(
      p, vec_layout(p, esize), static_cast<int>(run), static_cast<uint32_t>(nruns),
      static_cast<uint32_t>(ngroups), static_cast<uint32_t>(total));
}

// The striped prefill applies to channels-first rows with unit time stride whose 16-byte
// vectors all start aligned, for L a multiple of the vector length.
bool stripe_ok(const CausalConvParams& p, int esize) {
  const int64_t e = 16 / esize;
  if (p.channels_last || p.x_sl != 1 || p.y_sl != 1 || p.L <= kUpdateMaxL || p.L % e != 0) return false;
  return p.x_sc % e == 0 && p.x_sb % e == 0 && p.y_sc % e == 0 && p.y_sb % e == 0 && aligned16(p.x, 0, esize) &&
         aligned16(p.y, 0, esize);
}

template <int KT, linattn_dtype AT>
void launch_stripe(const CausalConvParams& p, int64_t nseg, int64_t nwarps, cudaStream_t s) {
  constexpr int wpb = kConvThreads / 32;
  const int64_t blocks = (nwarps + wpb - 1) / wpb;
  conv_stripe_kernel<KT, AT><<<static_cast<unsigned>(blocks), kConvThreads, 0, s>>>(
      p, static_cast<uint32_t>(nseg), static_cast<uint32_t>(nwarps));
}

template <int KT, linattn_dtype AT>
void launch_cl(const CausalConvParams& p, int64_t nruns, int64_t ngroups, int64_t total, cudaStream_t s) {
  constexpr int esize = AT == LINATTN_FLOAT32 ? 4 : 2;
  const int64_t blocks = (total + kConvThreads - 1) / kConvThreads;
  conv_cl_kernel<KT, AT><<<static_cast<unsigned>(blocks), kConvThreads, 0, s>>>(
      p, vec_layout(p, esize), static_cast<uint32_t>(nruns), static_cast<uint32_t>(ngroups),
      static_cast<uint32_t>(total));
}

template <int KT, linattn_dtype AT>
void launch_update(const CausalConvParams& p, int64_t ngroups, int64_t total, cudaStream_t s) {
  constexpr int esize = AT == LINATTN_FLOAT32 ? 4 : 2;
  constexpr int nr = AT == LINATTN_FLOAT32 ? 1 : 4;
  const int64_t blocks = (total + kConvThreads - 1) / kConvThreads;
  conv_update_kernel<KT, AT, nr><<<static_cast<unsigned>(blocks), kConvThreads, 0, s>>>(
      p, vec_layout(p, esize), static_cast<uint32_t>(ngroups), static_cast<uint32_t>(total));
}

template <int KT, linattn_dtype AT>
void launch(const CausalConvParams& p, int64_t run, int64_t nruns, int64_t total, cudaStream_t s) {
  const int64_t blocks = (total + kConvThreads - 1) / kConvThreads;
  conv_kernel<KT, AT><<<static_cast<unsigned>(blocks), kConvThreads, 0, s>>>(p, run, nruns, total);
}

template <linattn_dtype AT>
Status launch_for_act(const CausalConvParams& p, cudaStream_t s) {
  if (p.K > kMaxGenericK) {
    return unsupported("causal_conv (cuda): kernel width k = " + std::to_string(p.K) +
                       " is larger than the supported maximum " + std::to_string(kMaxGenericK));
  }
  // A run is at least k-1 long so that only the first run of a channel reads past_state.
  int64_t run = p.L <= kUpdateMaxL ? p.L : kTile;
  if (run < p.K - 1) run = p.K - 1;
  if (run < 1) run = 1;
  const int64_t nruns = p.L > 0 ? (p.L + run - 1) / run : 1;  // L = 0 still moves the state
  const int64_t total = p.B * p.C * nruns;
  if (total == 0) return Status::ok_status();
  if ((total + kConvThreads - 1) / kConvThreads > 0x7fffffff) {
    return unsupported("causal_conv (cuda): B * C * L is too large for one launch");
  }
  if (conv_update_bulk_ok(p)) return conv_update_bulk(p, s);
  if (conv_cl_bulk_ok(p)) return conv_cl_bulk(p, s);
  constexpr int esize = AT == LINATTN_FLOAT32 ? 4 : 2;
  if (p.L == 1 && p.K >= 2 && p.K <= 4 && vec_layout_ok(p, esize)) {
    const int64_t nr = AT == LINATTN_FLOAT32 ? 1 : 4;
    const int64_t ngroups = p.C / kUpdVec, utotal = ngroups * ((p.B + nr - 1) / nr);
    if (utotal < 0xffff0000ll) {
      with_vector_width(p.K, [&](auto k) {
        launch_update<decltype(k)::value, AT>(p, ngroups, utotal, s);
      });
      return launch_status("causal_conv (cuda): kernel launch");
    }
  }
  if (p.K >= 2 && p.K <= 4 && stripe_ok(p, esize)) {
    const int64_t nseg = (p.L + kStripeU * 32 * (16 / esize) - 1) / (kStripeU * 32 * (16 / esize));
    const int64_t nwarps = p.B * p.C * nseg;
    if (nwarps < 0xffff0000ll && p.C < 0xffffffffll) {
      with_vector_width(p.K, [&](auto k) {
        launch_stripe<decltype(k)::value, AT>(p, nseg, nwarps, s);
      });
      return launch_status("causal_conv (cuda): kernel launch");
    }
  }
  if (p.K >= 2 && p.K <= 4 && p.L > kUpdateMaxL && vec_layout_ok(p, esize)) {
    const int64_t steps = ClSteps<AT>::value;
    const int64_t nr = (p.L + steps - 1) / steps, ng = p.C / kClG, ctotal = p.B * nr * ng;
    if (ctotal < 0xffff0000ll) {
      with_vector_width(p.K, [&](auto k) {
        launch_cl<decltype(k)::value, AT>(p, nr, ng, ctotal, s);
      });
      return launch_status("causal_conv (cuda): kernel launch");
    }
  }
  // 32-bit thread indices in the channel-vector kernel.
  if (p.K >= 2 && p.K <= 4 && vec_layout_ok(p, esize) && vec_grid(p).total < 0xffff0000ll) {
    with_vector_width(p.K, [&](auto k) {
      launch_vec<decltype(k)::value, AT>(p, s);
    });
    return launch_status("causal_conv (cuda): kernel launch");
  }
  with_width(p.K, [&](auto k) {
    launch<decltype(k)::value, AT>(p, run, nruns, total, s);
  });
  return launch_status("causal_conv (cuda): kernel launch");
}

}  // namespace

Status causal_conv(const CausalConvParams& p, const Exec& e) {
  DeviceGuard guard(e.device_id);
  const auto s = static_cast<cudaStream_t>(e.stream);
  switch (p.act_dtype) {
    case LINATTN_FLOAT32: return launch_for_act<LINATTN_FLOAT32>(p, s);
    case LINATTN_FLOAT16: return launch_for_act<LINATTN_FLOAT16>(p, s);
    case LINATTN_BFLOAT16: return launch_for_act<LINATTN_BFLOAT16>(p, s);
    default:
      return unsupported("causal_conv (cuda): activation dtype " +
                         std::to_string(static_cast<int>(p.act_dtype)) +
                         " is not float32, float16 or bfloat16");
  }
}

}  // namespace linattn::detail::cuda
