// Pass/fail tolerances for comparisons with the oracle: relative Frobenius error, scaled to
// the precision of the stored activations and state (the oracle reads the same rounded inputs,
// so what remains is the rounding of the outputs and of the state between calls).
#pragma once

#include <algorithm>

#include "linattn/linattn.h"

namespace linattn::tool {

inline double dtype_tolerance(linattn_dtype dtype) {
  switch (dtype) {
    case LINATTN_FLOAT16: return 2e-3;   // 11-bit significand
    case LINATTN_BFLOAT16: return 1.6e-2;  // 8-bit significand
    default: return 1e-4;
  }
}

inline double tolerance_for(linattn_dtype activations, linattn_dtype state) {
  return std::max(dtype_tolerance(activations), dtype_tolerance(state));
}

}  // namespace linattn::tool
