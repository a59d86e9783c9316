// Internal entry points of the CUDA LinearAttention backend, beside the ones in
// core/backend.hpp: the benchmark times the token-recurrent kernel on long T directly.
#pragma once

#include <cstdint>

#include "core/backend.hpp"

namespace linattn::detail::cuda {

// Calls with at least this many tokens go to the chunked (tensor-core) prefill when it
// supports them; shorter ones and unsupported ones run the token-recurrent kernel. Measured
// (`linattn bench --device cuda --prefill-sweep`, H100, heads 16/32, d = 128, gated_delta, bf16,
// 2026-11-22): chunked is faster from T = 32 on at B = 1, 8 and 32 (1.24x, 1.56x, 1.24x at
// T = 32; 2.3-2.9x at T = 64) and slower at T = 16 (0.74x, 0.85x, 0.67x).
inline constexpr int64_t kChunkedPrefillMinTokens = 32;

// The token-recurrent kernel for any T, whatever the chunked path supports.
Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cuda
