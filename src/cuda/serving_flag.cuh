// The error flag of a serving call on the device (docs/SERVING.md "Index errors").
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace linattn::detail::cuda {

// Sequence n broke an index rule and was skipped: the flag (cleared to 0 at the start of the
// call) becomes 1 + n, unless another skipped sequence got there first.
__device__ __forceinline__ void raise_serving_error(int32_t* flag, int64_t n) {
  if (flag != nullptr) atomicCAS(flag, 0, static_cast<int32_t>(n + 1 > 0x7fffffff ? 0x7fffffff : n + 1));
}

}  // namespace linattn::detail::cuda
