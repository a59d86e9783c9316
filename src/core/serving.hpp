// The serving extensions (docs/SERVING.md) on top of the dense backends: a call with any
// serving field set is checked into a ServingPlan (serving_check.cpp: every index read and
// range-checked on the host before anything is written), then run as dense calls of the
// backend's existing entry points (serving.cpp): one per sequence, one per token for
// speculative decoding, one per checkpoint segment for prefix caching, with pointer offsets
// into the packed tensors and the pools. The dense path never comes here.
#pragma once

#include <cstdint>
#include <vector>

#include "core/backend.hpp"
#include "core/params.hpp"
#include "core/serving_params.hpp"
#include "core/status.hpp"
#include "linattn/linattn.h"

namespace linattn::detail {

// One sequence of a serving call, resolved from the index tensors.
struct ServingSequence {
  int64_t b = 0;       // batch row of the token tensors (0 when packed by cu_seqlens)
  int64_t t0 = 0;      // first token within that row
  int64_t len = 0;     // tokens
  int64_t read = -1;   // row or slot the initial state comes from; -1 = zeros
  int64_t write = -1;  // row or slot the final state goes to (not speculative); -1 = PAD
  bool pad = false;    // skipped: nothing read or written, output rows zero
};

struct ServingPlan {
  int64_t N = 0;
  bool pool = false;         // state_indices given: past/present are slot pools
  bool read_present = false; // pool with past_state absent: slots are read from present_state
  bool spec = false;         // state_indices (N, T_s): one written slot per token
  int64_t spec_len = 0;      // T_s
  std::vector<int64_t> spec_slots;  // N * T_s
  int64_t ckpt_interval = 0, ckpt_count = 0;  // checkpoints every n tokens, M per sequence
  std::vector<int64_t> ckpt_slots;            // N * M
  std::vector<ServingSequence> seqs;
  int32_t* error_flag = nullptr;  // set to 0 on success
  // Only fused pre-processing: one dense call over the whole batch suffices.
  bool whole_batch = false;
};

// A checked serving call: what device kernels get (serving_params.hpp) plus, on host backends,
// the plan resolved from the index contents.
struct ServingLinearAttention : LinearAttentionServing {
  ServingPlan plan;  // host backends only (empty for CUDA)
};

struct ServingCausalConv : CausalConvServing {
  ServingPlan plan;  // host backends only (empty for CUDA)
};

// Validation (serving_check.cpp). Requires serving_requested(args.serving). Every backend gets
// the views checked and `ix` filled; host backends also get `plan`, resolved from the index
// contents (an index error is then an error of the call).
Status check_linear_attention_serving(const linattn_linear_attention_args& args,
                                      linattn_backend backend, ServingLinearAttention* out);
Status check_causal_conv_serving(const linattn_causal_conv_args& args, linattn_backend backend,
                                 ServingCausalConv* out);

// Execution (serving.cpp) through a host backend's dense entry point.
using LinearAttentionFn = Status (*)(const LinearAttentionParams&, const Exec&);
using CausalConvFn = Status (*)(const CausalConvParams&, const Exec&);
// `carry_dtype`: the dtype of the host scratch that carries a state across the segments of one
// sequence (float32 on the CPU, float64 for the oracle).
Status run_linear_attention_serving(const ServingLinearAttention& s, LinearAttentionFn dense,
                                    linattn_dtype carry_dtype, const Exec& e);
Status run_causal_conv_serving(const ServingCausalConv& s, CausalConvFn dense,
                               linattn_dtype carry_dtype, const Exec& e);

}  // namespace linattn::detail
