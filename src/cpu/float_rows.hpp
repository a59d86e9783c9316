// Contiguous runs of elements between the storage types and float32, for the CPU kernels.
// float32 runs are used in place (no copy); 16-bit runs are converted into a caller buffer.
#pragma once

#include <cstdint>
#include <cstring>

#include "core/dtype.hpp"

namespace linattn::detail::cpu {

// Converts n elements starting at element `off` of `base` into dst.
inline void load_row(const void* base, int64_t off, int64_t n, linattn_dtype t,
                     float* __restrict dst) {
  if (n <= 0) return;  // empty rows (k = 1 state, T = 0) may come with null buffers
  switch (t) {
    case LINATTN_FLOAT32:
      std::memcpy(dst, static_cast<const float*>(base) + off, static_cast<size_t>(n) * 4);
      break;
    case LINATTN_FLOAT16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_bits_to_float(src[i]);
      break;
    }
    case LINATTN_BFLOAT16: {
      const uint16_t* src = static_cast<const uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_float(src[i]);
      break;
    }
    default:
      for (int64_t i = 0; i < n; ++i) dst[i] = load_as_float(base, off + i, t);
      break;
  }
}

// A float view of n elements: the data itself when it is float32, else converted into buf.
inline const float* row_as_float(const void* base, int64_t off, int64_t n, linattn_dtype t,
                                 float* buf) {
  if (t == LINATTN_FLOAT32) return static_cast<const float*>(base) + off;
  load_row(base, off, n, t, buf);
  return buf;
}

inline void store_row(void* base, int64_t off, int64_t n, linattn_dtype t,
                      const float* __restrict src) {
  if (n <= 0) return;
  switch (t) {
    case LINATTN_FLOAT32:
      std::memcpy(static_cast<float*>(base) + off, src, static_cast<size_t>(n) * 4);
      break;
    case LINATTN_FLOAT16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = float_to_f16_bits(src[i]);
      break;
    }
    case LINATTN_BFLOAT16: {
      uint16_t* dst = static_cast<uint16_t*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = float_to_bf16_bits(src[i]);
      break;
    }
    default:
      for (int64_t i = 0; i < n; ++i) store_from_float(base, off + i, t, src[i]);
      break;
  }
}

}  // namespace linattn::detail::cpu
