// Scalar conversions between the storage types and float, on host and device. bfloat16 and
// float16 are stored as uint16_t bit patterns; rounding to them is round-to-nearest-even.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/params.hpp"

namespace linattn::detail {

LINATTN_HD float bf16_bits_to_float(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
#if defined(__CUDA_ARCH__)
  f = __uint_as_float(u);
#else
  std::memcpy(&f, &u, 4);
#endif
  return f;
}

LINATTN_HD uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(f);
#else
  std::memcpy(&u, &f, 4);
#endif
  if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

LINATTN_HD float f16_bits_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int e = -1;
      do { ++e; mant <<= 1; } while ((mant & 0x400u) == 0);
      u = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
#if defined(__CUDA_ARCH__)
  f = __uint_as_float(u);
#else
  std::memcpy(&f, &u, 4);
#endif
  return f;
}

LINATTN_HD uint16_t float_to_f16_bits(float f) {
  uint32_t u;
#if defined(__CUDA_ARCH__)
  u = __float_as_uint(f);
#else
  std::memcpy(&u, &f, 4);
#endif
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t absu = u & 0x7fffffffu;
  if (absu >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (absu > 0x7f800000u ? 0x200u : 0u));
  if (absu >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to inf
  if (absu < 0x38800000u) {  // subnormal or zero in half
    if (absu < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t e = absu >> 23;
    uint32_t m = (absu & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;  // bits of m dropped to land on the half subnormal grid
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    uint32_t res = m >> shift;
    if (rem > half || (rem == half && (res & 1u))) ++res;
    return static_cast<uint16_t>(sign | res);
  }
  uint32_t res = absu - 0x38000000u;  // rebias 127 -> 15
  uint32_t rem = res & 0x1fffu;
  res >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (res & 1u))) ++res;
  return static_cast<uint16_t>(sign | res);
}

// Load element i of an array of the given storage type as float.
LINATTN_HD float load_as_float(const void* base, int64_t i, linattn_dtype t) {
  switch (t) {
    case LINATTN_FLOAT32: return static_cast<const float*>(base)[i];
    case LINATTN_FLOAT16: return f16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case LINATTN_BFLOAT16: return bf16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case LINATTN_FLOAT64: return static_cast<float>(static_cast<const double*>(base)[i]);
    default: return 0.f;
  }
}

LINATTN_HD void store_from_float(void* base, int64_t i, linattn_dtype t, float x) {
  switch (t) {
    case LINATTN_FLOAT32: static_cast<float*>(base)[i] = x; break;
    case LINATTN_FLOAT16: static_cast<uint16_t*>(base)[i] = float_to_f16_bits(x); break;
    case LINATTN_BFLOAT16: static_cast<uint16_t*>(base)[i] = float_to_bf16_bits(x); break;
    case LINATTN_FLOAT64: static_cast<double*>(base)[i] = x; break;
    default: break;
  }
}

}  // namespace linattn::detail
