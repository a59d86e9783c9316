// CPU LinearAttention entry point: picks the algorithm for the call. Today every call takes the
// fused recurrent path (float32 math, portable auto-vectorised loops).
#include "core/backend.hpp"
#include "cpu/recurrent.hpp"

namespace linattn::detail::cpu {

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  return linear_attention_recurrent(p, e);
}

}  // namespace linattn::detail::cpu
