// Element access for the float64 oracle: every storage type read as double, written from double.
// float64 views are accepted here (and only here) so the oracle's outputs keep full precision.
#pragma once

#include <cstdint>

#include "core/dtype.hpp"

namespace linattn::detail::reference {

inline double load(const void* base, int64_t i, linattn_dtype t) {
  if (t == LINATTN_FLOAT64) return static_cast<const double*>(base)[i];
  return static_cast<double>(load_as_float(base, i, t));
}

inline void store(void* base, int64_t i, linattn_dtype t, double x) {
  if (t == LINATTN_FLOAT64) {
    static_cast<double*>(base)[i] = x;
  } else {
    store_from_float(base, i, t, static_cast<float>(x));
  }
}

}  // namespace linattn::detail::reference
