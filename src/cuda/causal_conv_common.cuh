// Device pieces shared by the dense CausalConvWithState kernels (causal_conv.cu) and the
// serving kernels (causal_conv_serving.cu): packed 16-bit conversions, vector runs of inputs
// and outputs, and the packed 4-channel loads of the update kernels.
#pragma once

#include <cstdint>

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

}  // namespace linattn::detail::cuda
