// The bulk-copy kernels of CausalConvWithState for 16-bit activations on sm_90 and newer: the
// update (L = 1, causal_conv_update.cu) and the channels-last prefill (causal_conv_cl_bulk.cu).
#pragma once

#include <cuda_runtime.h>

#include <type_traits>

#include "core/params.hpp"
#include "core/serving_params.hpp"
#include "core/status.hpp"
#include "cuda/causal_conv_common.cuh"

namespace linattn::detail::cuda {

// Rows of 16-bit elements (stride in elements) that all start 16-byte aligned.
inline bool row16(const void* base, int64_t stride) { return aligned16(base, 0, 2) && stride % 8 == 0; }

// What both bulk-copy kernels need of a call: k = 2..4, 16-bit activations, C > 0 a multiple of
// 8 with contiguous channels, every batch row of the input and output 16-byte aligned.
inline bool bulk_io_ok(const CausalConvParams& p) {
  if (p.K < 2 || p.K > 4 || p.C <= 0 || p.C % 8 != 0) return false;
  if (p.act_dtype != LINATTN_BFLOAT16 && p.act_dtype != LINATTN_FLOAT16) return false;
  return p.x_sc == 1 && p.y_sc == 1 && row16(p.x, p.x_sb) && row16(p.y, p.y_sb);
}

// Calls f(KT, AT) with the call's width and 16-bit activation dtype as integral constants.
template <class F>
void with_bulk_types(const CausalConvParams& p, F&& f) {
  with_vector_width(p.K, [&](auto k) {
    if (p.act_dtype == LINATTN_BFLOAT16) {
      f(k, std::integral_constant<linattn_dtype, LINATTN_BFLOAT16>{});
    } else {
      f(k, std::integral_constant<linattn_dtype, LINATTN_FLOAT16>{});
    }
  });
}

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
