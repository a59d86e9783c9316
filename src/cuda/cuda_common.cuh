// Helpers shared by the CUDA kernels: typed loads and stores in float32, the launch check that
// turns a CUDA error into the library's Status, and on the host the cached device attributes
// and the current-device guard.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "core/params.hpp"
#include "core/status.hpp"

namespace linattn::detail::cuda {

// Activation dtype as a template parameter: the per-token loads sit in the hot loop.
template <linattn_dtype DT>
__device__ __forceinline__ float ld(const void* base, int64_t i) {
  if constexpr (DT == LINATTN_FLOAT32) {
    return __ldg(static_cast<const float*>(base) + i);
  } else if constexpr (DT == LINATTN_FLOAT16) {
    return __half2float(__ldg(static_cast<const __half*>(base) + i));
  } else {
    return __bfloat162float(__ldg(static_cast<const __nv_bfloat16*>(base) + i));
  }
}

template <linattn_dtype DT>
__device__ __forceinline__ void st(void* base, int64_t i, float x) {
  if constexpr (DT == LINATTN_FLOAT32) {
    static_cast<float*>(base)[i] = x;
  } else if constexpr (DT == LINATTN_FLOAT16) {
    static_cast<__half*>(base)[i] = __float2half_rn(x);
  } else {
    static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(x);
  }
}

// Runtime-dtype forms, for data touched once per call (states). The switch is uniform across
// the grid, so it costs a branch, not divergence. Plain loads (no __ldg): a state may be
// updated in place.
__device__ __forceinline__ float ld_rt(const void* base, int64_t i, linattn_dtype t) {
  switch (t) {
    case LINATTN_FLOAT16: return __half2float(static_cast<const __half*>(base)[i]);
    case LINATTN_BFLOAT16: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
    default: return static_cast<const float*>(base)[i];
  }
}

__device__ __forceinline__ void st_rt(void* base, int64_t i, linattn_dtype t, float x) {
  switch (t) {
    case LINATTN_FLOAT16: static_cast<__half*>(base)[i] = __float2half_rn(x); break;
    case LINATTN_BFLOAT16: static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(x); break;
    default: static_cast<float*>(base)[i] = x; break;
  }
}

// Two 16-bit values (float16 or bfloat16, low half first) in one 32-bit word, to and from float.
__device__ __forceinline__ void unpack2_rt(uint32_t w, linattn_dtype t, float out[2]) {
  const uint16_t lo = static_cast<uint16_t>(w & 0xffffu), hi = static_cast<uint16_t>(w >> 16);
  if (t == LINATTN_FLOAT16) {
    out[0] = __half2float(__ushort_as_half(lo));
    out[1] = __half2float(__ushort_as_half(hi));
  } else {
    out[0] = __bfloat162float(__ushort_as_bfloat16(lo));
    out[1] = __bfloat162float(__ushort_as_bfloat16(hi));
  }
}

__device__ __forceinline__ uint32_t pack2_rt(const float x[2], linattn_dtype t) {
  uint16_t lo, hi;
  if (t == LINATTN_FLOAT16) {
    lo = __half_as_ushort(__float2half_rn(x[0]));
    hi = __half_as_ushort(__float2half_rn(x[1]));
  } else {
    lo = __bfloat16_as_ushort(__float2bfloat16_rn(x[0]));
    hi = __bfloat16_as_ushort(__float2bfloat16_rn(x[1]));
  }
  return static_cast<uint32_t>(lo) | (static_cast<uint32_t>(hi) << 16);
}

// Four consecutive elements starting at i, which the caller guarantees is aligned to four
// elements (16 bytes for float32, 8 for 16-bit types): one vector access.
__device__ __forceinline__ void ld4_rt(const void* base, int64_t i, linattn_dtype t, float out[4]) {
  if (t == LINATTN_FLOAT32) {
    const float4 v = *reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    out[0] = v.x; out[1] = v.y; out[2] = v.z; out[3] = v.w;
  } else {
    const uint2 u = *reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(base) + i);
    const uint32_t w[2] = {u.x, u.y};
    for (int j = 0; j < 2; ++j) {
      unpack2_rt(w[j], t, out + 2 * j);
    }
  }
}

__device__ __forceinline__ void st4_rt(void* base, int64_t i, linattn_dtype t, const float x[4]) {
  if (t == LINATTN_FLOAT32) {
    *reinterpret_cast<float4*>(static_cast<float*>(base) + i) = make_float4(x[0], x[1], x[2], x[3]);
  } else {
    uint32_t w[2];
    for (int j = 0; j < 2; ++j) {
      w[j] = pack2_rt(x + 2 * j, t);
    }
    *reinterpret_cast<uint2*>(static_cast<uint16_t*>(base) + i) = make_uint2(w[0], w[1]);
  }
}

// Eight consecutive elements starting at i, aligned to eight elements (32 bytes for float32,
// 16 for 16-bit types): one 16-byte access for 16-bit states, two for float32.
__device__ __forceinline__ void ld8_rt(const void* base, int64_t i, linattn_dtype t, float out[8]) {
  if (t == LINATTN_FLOAT32) {
    const float4* v = reinterpret_cast<const float4*>(static_cast<const float*>(base) + i);
    const float4 a = v[0], b = v[1];
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
  } else {
    const uint4 u = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(base) + i);
    const uint32_t w[4] = {u.x, u.y, u.z, u.w};
    for (int j = 0; j < 4; ++j) {
      unpack2_rt(w[j], t, out + 2 * j);
    }
  }
}

__device__ __forceinline__ void st8_rt(void* base, int64_t i, linattn_dtype t, const float x[8]) {
  if (t == LINATTN_FLOAT32) {
    float4* v = reinterpret_cast<float4*>(static_cast<float*>(base) + i);
    v[0] = make_float4(x[0], x[1], x[2], x[3]);
    v[1] = make_float4(x[4], x[5], x[6], x[7]);
  } else {
    uint32_t w[4];
    for (int j = 0; j < 4; ++j) {
      w[j] = pack2_rt(x + 2 * j, t);
    }
    *reinterpret_cast<uint4*>(static_cast<uint16_t*>(base) + i) = make_uint4(w[0], w[1], w[2], w[3]);
  }
}

__device__ __forceinline__ float silu(float x) { return x / (1.f + expf(-x)); }

// The shared-memory address of p, as PTX instructions that take a .shared operand want it.
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// L2 policy (sm_80 and newer) for lines touched once for a long while: they go first when L2
// needs room, which leaves it to the lines written, or to those other CTAs are about to read.
__device__ __forceinline__ uint64_t l2_evict_first() {
  uint64_t pol;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
  return pol;
}

// Checks the launch that was just issued: configuration errors show up here, asynchronously
// raised faults at the caller's next synchronisation.
inline Status launch_status(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::ok_status();
  return Status(LINATTN_ERROR_DEVICE, std::string(what) + ": " + cudaGetErrorString(err));
}

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok_status();
  return Status(LINATTN_ERROR_DEVICE, std::string(what) + ": " + cudaGetErrorString(err));
}

}  // namespace linattn::detail::cuda

namespace linattn::detail::cuda {

// Attribute A of device_id (0 when the device cannot be asked), asked once per device: the
// dispatch and launch choices that need it run on every call.
template <cudaDeviceAttr A>
int device_attribute(int device_id) {
  constexpr int kCached = 64;
  static std::array<std::atomic<int>, kCached> cache{};  // 0: not asked yet
  const bool cached = device_id >= 0 && device_id < kCached;
  if (cached) {
    const int v = cache[device_id].load(std::memory_order_relaxed);
    if (v > 0) return v;
  }
  int v = 0;
  if (cudaDeviceGetAttribute(&v, A, device_id) != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: leave no trace for the next launch check
    return 0;
  }
  if (cached) cache[device_id].store(v, std::memory_order_relaxed);
  return v;
}

// ask() for the current device (a yes or no that does not change while the process runs),
// asked once per device and kept in the caller's cache (0: not asked, 1: no, 2: yes); false
// when the current device cannot be named. A failed query inside ask() leaves no error behind.
template <class Ask>
bool asked_once_per_device(std::array<std::atomic<int>, 64>& cache, Ask&& ask) {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) {
    (void)cudaGetLastError();
    return false;
  }
  const bool cached = dev < static_cast<int>(cache.size());
  if (cached) {
    const int v = cache[dev].load(std::memory_order_relaxed);
    if (v != 0) return v == 2;
  }
  const bool yes = ask(dev);
  (void)cudaGetLastError();  // not sticky: leave no trace for the next launch check
  if (cached) cache[dev].store(yes ? 2 : 1, std::memory_order_relaxed);
  return yes;
}

// Makes e.device_id current for the scope of a call and restores the caller's device after, so
// that a launch lands on the device of the context's stream.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != device) {
      if (cudaSetDevice(device) == cudaSuccess) switched_ = true;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool switched_ = false;
};

}  // namespace linattn::detail::cuda
