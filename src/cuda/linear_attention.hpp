// Internal entry points of the CUDA LinearAttention backend, beside the ones in
// core/backend.hpp: the benchmark times the token-recurrent kernel on long T directly.
#pragma once

#include <cstdint>

#include "core/backend.hpp"

namespace linattn::detail::cuda {

// Calls with at least this many tokens go to the chunked (tensor-core) prefill when it
// supports them; shorter ones and unsupported ones run the token-recurrent kernel.
inline constexpr int64_t kChunkedPrefillMinTokens = 64;

// The token-recurrent kernel for any T, whatever the chunked path supports.
Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cuda
