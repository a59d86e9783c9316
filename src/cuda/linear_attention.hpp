// Internal entry points of the CUDA LinearAttention backend, beside the ones in
// core/backend.hpp: the benchmark times the token-recurrent kernel on long T directly.
#pragma once

#include <cstdint>

#include "core/backend.hpp"

namespace linattn::detail::cuda {

// Calls with at least this many tokens go to the chunked (tensor-core) prefill when it
// supports them; shorter ones and unsupported ones run the token-recurrent kernel. Measured
// (`linattn bench --device cuda --prefill-sweep --reps 15`, H100, heads 16/32, d = 128,
// gated_delta, bf16, 2026-11-23, two runs): recurrent time over chunked at T = 8 / 12 / 16 is
// 0.79-0.83x / 1.00-1.01x / 1.21-1.23x at B = 1, 1.06-1.07x / 1.46-1.49x / 1.79-1.80x at B = 8,
// 0.86-0.87x / 1.19-1.20x / 1.54-1.55x at B = 32: from 12 tokens on the chunked path is never
// slower (a tie at B = 1) and up to 1.5x faster. (It was 32 when the chunked path was slower.)
inline constexpr int64_t kChunkedPrefillMinTokens = 12;

// The token-recurrent kernel for any T, whatever the chunked path supports.
Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cuda
