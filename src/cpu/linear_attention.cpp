// CPU LinearAttention entry point. Every call takes the fused recurrent kernel
// (recurrent_kernel.hpp) for the active instruction set: with the decay folded out of the state
// and state blocks resident in L1 it runs at about 3 FMAs per state element per token, which
// measures faster than the chunked (WY) form would at the FLOP count the chunked form needs
// (docs/PERFORMANCE.md, CPU section), for decode and prefill alike.
#include "core/backend.hpp"
#include "cpu/recurrent.hpp"

namespace linattn::detail::cpu {

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  return linear_attention_recurrent(p, e);
}

}  // namespace linattn::detail::cpu
