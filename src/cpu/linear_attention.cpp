// CPU LinearAttention entry point: the chunked (WY) kernel (chunked_kernel.hpp) or the fused
// recurrent kernel (recurrent_kernel.hpp), by rule, length and head size. Measured on a 2-core
// Zen 3 with AVX2 (docs/PERFORMANCE.md, CPU section, 2026-11-22), 16/32 heads, 2 threads:
// - rules without delta (linear, gated): the chunked kernel is 1.25-1.4x faster at d = 128 and
//   T >= 128 (the recurrence there is bound by one state load or store per FMA; the chunked
//   form is three state-sized GEMMs per chunk plus small intra-chunk products);
// - delta rules: both within noise of each other at d = 128, T = 1K-8K (the chunked form adds
//   T = (I + A)^-1, W = T diag(b L) K and W S0 on top of the same 3 d^2 state work per token),
//   so the recurrent kernel stays;
// - heads below 64 wide: the intra-chunk work (about C d per token, C = 48) is no longer small
//   next to the state work (3 d^2), so the recurrent kernel stays;
// - per-key-dim decay: recurrent only (no overflow-safe chunked form here);
// - decode and short prompts (T < 128): recurrent.
// LINATTN_CPU_PREFILL=recurrent|chunked (chunked_prefill.hpp) overrides the choice.
#include <cstdint>

#include "core/backend.hpp"
#include "cpu/chunked_prefill.hpp"
#include "cpu/recurrent.hpp"

namespace linattn::detail::cpu {
namespace {

constexpr int64_t kChunkedMinTokens = 128;
constexpr int32_t kChunkedMinHeadDim = 64;

bool use_chunked(const LinearAttentionParams& p) {
  if (!chunked_supports(p)) return false;
  switch (prefill_path()) {
    case PrefillPath::kRecurrent: return false;
    case PrefillPath::kChunked: return true;
    case PrefillPath::kAuto: break;
  }
  return !p.delta && p.T >= kChunkedMinTokens && p.dk >= kChunkedMinHeadDim &&
         p.dv >= kChunkedMinHeadDim;
}

}  // namespace

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  return use_chunked(p) ? linear_attention_chunked(p, e) : linear_attention_recurrent(p, e);
}

}  // namespace linattn::detail::cpu
