// The bulk-copy update kernel of CausalConvWithState (causal_conv_update.cu): L = 1 calls with
// 16-bit activations and states on sm_90 and newer.
#pragma once

#include <cuda_runtime.h>

#include "core/params.hpp"
#include "core/status.hpp"

namespace linattn::detail::cuda {

// True when the call can take the bulk-copy update kernel: L = 1, k = 2..4, 16-bit
// activations with states of the same dtype (or none), channels contiguous with C a multiple
// of 8, every row of the input, output and states starting 16-byte aligned, contiguous weight
// rows and bias, and a device and binary of compute capability 9.0 or newer.
bool conv_update_bulk_ok(const CausalConvParams& p);

// Launches it on s (the caller checked conv_update_bulk_ok).
Status conv_update_bulk(const CausalConvParams& p, cudaStream_t s);

}  // namespace linattn::detail::cuda
