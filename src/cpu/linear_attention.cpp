// CPU LinearAttention entry point: the chunked (WY) kernel (chunked_kernel.hpp) for prefill,
// the fused recurrent kernel (recurrent_kernel.hpp) for decode, short prompts and per-key-dim
// decay. Threshold: see kChunkedMinTokens (measured, docs/PERFORMANCE.md CPU section).
#include <cstdint>

#include "core/backend.hpp"
#include "cpu/chunked_prefill.hpp"
#include "cpu/recurrent.hpp"

namespace linattn::detail::cpu {
namespace {

// Shortest prompt that takes the chunked kernel. Provisional: measured slower than the fused
// recurrent kernel so far, so the automatic choice stays recurrent.
constexpr int64_t kChunkedMinTokens = INT64_MAX;

bool use_chunked(const LinearAttentionParams& p) {
  if (!chunked_supports(p)) return false;
  switch (prefill_path()) {
    case PrefillPath::kRecurrent: return false;
    case PrefillPath::kChunked: return true;
    case PrefillPath::kAuto: break;
  }
  return p.T >= kChunkedMinTokens;
}

}  // namespace

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  return use_chunked(p) ? linear_attention_chunked(p, e) : linear_attention_recurrent(p, e);
}

}  // namespace linattn::detail::cpu
