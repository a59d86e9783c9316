// Device pieces shared by the dense CausalConvWithState kernels (causal_conv.cu) and the
// serving kernels (causal_conv_serving.cu): packed 16-bit conversions, vector runs of inputs
// and outputs, and the packed 4-channel loads of the update kernels.
#pragma once

#include <cstdint>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda {

// Four 16-bit elements packed in a uint2 <-> float32.
template <linattn_dtype AT>
__device__ __forceinline__ float cvt16(uint16_t h) {
  if constexpr (AT == LINATTN_FLOAT16) return __half2float(__ushort_as_half(h));
  else return __bfloat162float(__ushort_as_bfloat16(h));
}

template <linattn_dtype AT>
__device__ __forceinline__ uint16_t cvt16(float x) {
  if constexpr (AT == LINATTN_FLOAT16) return __half_as_ushort(__float2half_rn(x));
  else return __bfloat16_as_ushort(__float2bfloat16_rn(x));
}

template <linattn_dtype AT>
__device__ __forceinline__ void unpack4(uint2 u, float* out) {
  out[0] = cvt16<AT>(static_cast<uint16_t>(u.x & 0xffffu));
  out[1] = cvt16<AT>(static_cast<uint16_t>(u.x >> 16));
  out[2] = cvt16<AT>(static_cast<uint16_t>(u.y & 0xffffu));
  out[3] = cvt16<AT>(static_cast<uint16_t>(u.y >> 16));
}

template <linattn_dtype AT>
__device__ __forceinline__ uint2 pack4(const float* x) {
  return make_uint2(static_cast<uint32_t>(cvt16<AT>(x[0])) | (static_cast<uint32_t>(cvt16<AT>(x[1])) << 16),
                    static_cast<uint32_t>(cvt16<AT>(x[2])) | (static_cast<uint32_t>(cvt16<AT>(x[3])) << 16));
}

// N consecutive elements from a 16-byte aligned address (8-byte for 16-bit runs that are not a
// multiple of 8).
template <linattn_dtype AT, int N>
__device__ __forceinline__ void ld_run(const void* base, int64_t i, float* out) {
  if constexpr (AT == LINATTN_FLOAT32) {
    const float4* v = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 4; ++n) {
      const float4 x = __ldg(v + n);
      out[4 * n] = x.x; out[4 * n + 1] = x.y; out[4 * n + 2] = x.z; out[4 * n + 3] = x.w;
    }
  } else if constexpr (N % 8 != 0) {
    // Runs of 4 (8-byte aligned): the 4-channel kernels' vectors and 12-element weight rows.
    const uint2* v = reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 4; ++n) unpack4<AT>(__ldg(v + n), out + 4 * n);
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
  } else if constexpr (N % 8 != 0) {
    uint2* v = reinterpret_cast<uint2*>(static_cast<uint16_t*>(base) + i);
#pragma unroll
    for (int n = 0; n < N / 4; ++n) v[n] = pack4<AT>(x + 4 * n);
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

// SiLU as the conv kernels apply it. For 16-bit activations the approximate exponential and
// division (two MUFU operations) are accurate to a few float32 ulps, far below the rounding of
// the 16-bit output (2^-9 relative for bfloat16, 2^-12 for float16), and save the IEEE
// division's refinement steps, which made the prefill kernels issue-bound. float32 outputs keep
// the accurate form. Limits agree with it: -inf and NaN give NaN, +inf gives +inf, large
// negative x gives -0.
template <linattn_dtype AT>
__device__ __forceinline__ float conv_silu(float x) {
  if constexpr (AT == LINATTN_FLOAT32) return silu(x);
  else return __fdividef(x, 1.f + __expf(-x));
}

__host__ __device__ __forceinline__ bool aligned16(const void* base, int64_t i, int elem_bytes) {
  return (reinterpret_cast<uintptr_t>(base) + static_cast<uintptr_t>(i) * elem_bytes) % 16 == 0;
}

template <linattn_dtype AT> struct Packed4 { using T = uint2; };
template <> struct Packed4<LINATTN_FLOAT32> { using T = float4; };

template <linattn_dtype AT>
__device__ __forceinline__ typename Packed4<AT>::T ld_packed(const void* base, int64_t i) {
  // Plain load: the state may be updated in place.
  return *reinterpret_cast<const typename Packed4<AT>::T*>(static_cast<const char*>(base) +
                                                           i * (AT == LINATTN_FLOAT32 ? 4 : 2));
}

template <linattn_dtype AT>
__device__ __forceinline__ void unpack_packed(const typename Packed4<AT>::T& v, float* out) {
  if constexpr (AT == LINATTN_FLOAT32) {
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
  } else {
    unpack4<AT>(v, out);
  }
}

// Calls f(std::integral_constant<int, K>{}) with the kernel width k as a compile-time value:
// the general kernels are instantiated for k = 1..4 and, as K = 0, for any other width.
template <class F>
void with_width(int k, F&& f) {
  switch (k) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    default: f(std::integral_constant<int, 0>{}); break;
  }
}

// The same for the vector kernels, instantiated for k = 2..4 (their callers route only those).
template <class F>
void with_vector_width(int k, F&& f) {
  switch (k) {
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    default: f(std::integral_constant<int, 4>{}); break;
  }
}

// Weights and bias of 4 consecutive channels from c, w[ch * k + j]; 16-bit types stay packed
// two per register and are converted on use, which keeps the update kernels within 64
// registers with four rows of loads in flight. w_vec / bias_vec: the rows are 16-byte aligned
// and contiguous, so they load as vectors.
template <int KT, linattn_dtype AT>
struct ChannelWeights4 {
  static constexpr int kG = 4;  // channels
  static constexpr bool kF32 = AT == LINATTN_FLOAT32;
  static constexpr int NW = kG * KT;
  float wf[kF32 ? NW : 1];
  uint32_t wp[kF32 ? 1 : NW / 2];
  float bias[kG];

  __device__ __forceinline__ void load(const CausalConvParams& p, bool w_vec, bool bias_vec, int64_t c) {
    if constexpr (kF32) {
      if (w_vec) {
        ld_run<AT, NW>(p.w, c * KT, wf);
      } else {
#pragma unroll
        for (int ch = 0; ch < kG; ++ch)
#pragma unroll
          for (int j = 0; j < KT; ++j) wf[ch * KT + j] = ld<AT>(p.w, (c + ch) * p.w_sc + j * p.w_sk);
      }
    } else if (w_vec) {
      const uint2* v = reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(p.w) + c * KT);
#pragma unroll
      for (int n = 0; n < NW / 4; ++n) {
        const uint2 u = __ldg(v + n);
        wp[2 * n] = u.x;
        wp[2 * n + 1] = u.y;
      }
    } else {
#pragma unroll
      for (int n = 0; n < NW / 2; ++n) {
        const int e0 = 2 * n, e1 = 2 * n + 1;
        const uint32_t lo = cvt16<AT>(ld<AT>(p.w, (c + e0 / KT) * p.w_sc + (e0 % KT) * p.w_sk));
        const uint32_t hi = cvt16<AT>(ld<AT>(p.w, (c + e1 / KT) * p.w_sc + (e1 % KT) * p.w_sk));
        wp[n] = lo | (hi << 16);
      }
    }
    if (p.bias == nullptr) {
#pragma unroll
      for (int ch = 0; ch < kG; ++ch) bias[ch] = 0.f;
    } else if (bias_vec) {
      ld_run<AT, kG>(p.bias, c, bias);
    } else {
#pragma unroll
      for (int ch = 0; ch < kG; ++ch) bias[ch] = ld<AT>(p.bias, (c + ch) * p.bias_sc);
    }
  }
  __device__ __forceinline__ float get(int e) const {
    if constexpr (kF32) return wf[e];
    else return cvt16<AT>(static_cast<uint16_t>((e & 1) ? wp[e >> 1] >> 16 : wp[e >> 1] & 0xffffu));
  }
};

}  // namespace linattn::detail::cuda
