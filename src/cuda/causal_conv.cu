// CausalConvWithState on CUDA: one kernel for prefill (L > 1) and update (small L).
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

#include "core/backend.hpp"
#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda {

namespace {

constexpr int kConvThreads = 256;
constexpr int kTile = 16;          // time steps per thread in prefill
constexpr int kUpdateMaxL = 16;    // up to this L one thread covers the whole call
constexpr int kMaxGenericK = 64;   // window bound of the runtime-width kernel

// N consecutive elements from a 16-byte aligned address.
template <linattn_dtype AT, int N>
__device__ __forceinline__ void ld_run(const void* base, int64_t i, float* out) {
  if constexpr (AT == LINATTN_FLOAT32) {
    const float4* v = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 4; ++n) {
      const float4 x = __ldg(v + n);
      out[4 * n] = x.x; out[4 * n + 1] = x.y; out[4 * n + 2] = x.z; out[4 * n + 3] = x.w;
    }
  } else {
    const uint4* v = reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 8; ++n) {
      const uint4 x = __ldg(v + n);
      const uint32_t w[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        const uint16_t lo = static_cast<uint16_t>(w[m] & 0xffffu), hi = static_cast<uint16_t>(w[m] >> 16);
        if constexpr (AT == LINATTN_FLOAT16) {
          out[8 * n + 2 * m] = __half2float(__ushort_as_half(lo));
          out[8 * n + 2 * m + 1] = __half2float(__ushort_as_half(hi));
        } else {
          out[8 * n + 2 * m] = __bfloat162float(__ushort_as_bfloat16(lo));
          out[8 * n + 2 * m + 1] = __bfloat162float(__ushort_as_bfloat16(hi));
        }
      }
    }
  }
}

template <linattn_dtype AT, int N>
__device__ __forceinline__ void st_run(void* base, int64_t i, const float* x) {
  if constexpr (AT == LINATTN_FLOAT32) {
    float4* v = reinterpret_cast<float4*>(static_cast<float*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 4; ++n) v[n] = make_float4(x[4 * n], x[4 * n + 1], x[4 * n + 2], x[4 * n + 3]);
  } else {
    uint4* v = reinterpret_cast<uint4*>(static_cast<uint16_t*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 8; ++n) {
      uint32_t w[4];
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        uint16_t lo, hi;
        if constexpr (AT == LINATTN_FLOAT16) {
          lo = __half_as_ushort(__float2half_rn(x[8 * n + 2 * m]));
          hi = __half_as_ushort(__float2half_rn(x[8 * n + 2 * m + 1]));
        } else {
          lo = __bfloat16_as_ushort(__float2bfloat16_rn(x[8 * n + 2 * m]));
          hi = __bfloat16_as_ushort(__float2bfloat16_rn(x[8 * n + 2 * m + 1]));
        }
        w[m] = static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
      }
      v[n] = make_uint4(w[0], w[1], w[2], w[3]);
    }
  }
}

__device__ __forceinline__ bool aligned16(const void* base, int64_t i, int elem_bytes) {
  return (reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(i) * elem_bytes) % 16 == 0;
}

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
    return p.silu ? silu(acc) : acc;
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
  switch (p.K) {
    case 1: launch<1, AT>(p, run, nruns, total, s); break;
    case 2: launch<2, AT>(p, run, nruns, total, s); break;
    case 3: launch<3, AT>(p, run, nruns, total, s); break;
    case 4: launch<4, AT>(p, run, nruns, total, s); break;
    default: launch<0, AT>(p, run, nruns, total, s); break;
  }
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
