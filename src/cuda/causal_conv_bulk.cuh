// The bulk-copy kernels of CausalConvWithState for 16-bit activations on sm_90 and newer: the
// update (L = 1, causal_conv_update.cu) and the channels-last prefill (causal_conv_cl_bulk.cu).
#pragma once

#include <cuda_runtime.h>

#include "core/params.hpp"
#include "core/serving_params.hpp"
#include "core/status.hpp"

namespace linattn::detail::cuda {

// True when the call can take the bulk-copy update kernel: L = 1, k = 2..4, 16-bit
// activations with states of the same dtype (or none), channels contiguous with C a multiple
// of 8, every row of the input, output and states starting 16-byte aligned, contiguous weight
// rows and bias, and bulk_copy_available().
bool conv_update_bulk_ok(const CausalConvParams& p);

// Launches it on s (the caller checked conv_update_bulk_ok).
Status conv_update_bulk(const CausalConvParams& p, cudaStream_t s);

// The state pools of a serving call: where sequences' states are read from (rd: past_state, or
// present_state read in place; null: no initial states) and written to.
struct StatePools {
  const void* rd = nullptr;
  linattn_dtype rd_dtype = LINATTN_FLOAT32;
  int64_t rd_sb = 0, rd_sc = 0;
  void* wr = nullptr;
  linattn_dtype wr_dtype = LINATTN_FLOAT32;
  int64_t wr_sb = 0, wr_sc = 0;
};

// The same kernel for serving calls with one token per row (not packed; speculative calls with
// one token included), states in slot pools of the activation dtype.
bool conv_update_bulk_serving_ok(const CausalConvServing& s, const StatePools& pools);
Status conv_update_bulk_serving(const CausalConvServing& s, const StatePools& pools, cudaStream_t st);

// True when the call can take the bulk-copy channels-last prefill: L > 16, k = 2..4, 16-bit
// activations, channels contiguous in input and output with C a multiple of 8, every time
// step's row starting 16-byte aligned, and bulk_copy_available(). Weights, bias and states may
// have any strides and state dtypes.
bool conv_cl_bulk_ok(const CausalConvParams& p);

// Launches it on s (the caller checked conv_cl_bulk_ok).
Status conv_cl_bulk(const CausalConvParams& p, cudaStream_t s);

}  // namespace linattn::detail::cuda
