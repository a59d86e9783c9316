// Fused recurrent LinearAttention on the CPU: one pass over the tokens per (batch, kv head),
// the state held in a float32 buffer. Good for decode and short prefill; the seam where a
// chunked prefill and ISA-specific kernels plug in is the dispatcher in linear_attention.cpp.
#pragma once

#include "core/backend.hpp"

namespace linattn::detail::cpu {

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cpu
