// Chunked (WY-form) prefill on tensor cores (CHUNKED.md). The recurrent backend entry
// (src/cuda/linear_attention.cu) asks chunked_prefill_supports() and, when it says yes and the
// call is long enough, runs chunked_prefill() instead of the token-recurrent kernel.
#pragma once

#include <cstddef>

#include "core/backend.hpp"

namespace linattn::detail::cuda {

// True when the chunked path implements this call (dtypes, head dims, rule, decay kind).
bool chunked_prefill_supports(const LinearAttentionParams& p);
// Device workspace the chunked path needs for p (0 when unsupported).
size_t chunked_prefill_workspace_bytes(const LinearAttentionParams& p);
// Runs the chunked path asynchronously on e.stream; e.workspace has the bytes asked for.
Status chunked_prefill(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cuda
