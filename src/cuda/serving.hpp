// Internal entry points of the CUDA serving path (docs/SERVING.md). The public entries
// (core/backend.hpp: linear_attention_serving, causal_conv_serving) clear the error flag on the
// stream and pick one of these. Every kernel behind them resolves its own sequence from the
// index views (core/serving_params.hpp: resolve_sequence) and skips a sequence whose indices
// break a rule, raising the flag with atomic_flag_error().
#pragma once

#include <cstddef>

#include "core/backend.hpp"

namespace linattn::detail::cuda {

// Token-recurrent LinearAttention for every serving call (serving_recurrent.cu).
Status linear_attention_recurrent_serving(const LinearAttentionServing& s, const Exec& e);

// Chunked prefill for the serving calls it implements (chunked_serving.cu).
bool chunked_prefill_serving_supports(const LinearAttentionServing& s);
size_t chunked_prefill_serving_workspace_bytes(const LinearAttentionServing& s);
Status chunked_prefill_serving(const LinearAttentionServing& s, const Exec& e);

// CausalConvWithState serving kernels (causal_conv_serving.cu).
Status causal_conv_serving_kernels(const CausalConvServing& s, const Exec& e);

}  // namespace linattn::detail::cuda
