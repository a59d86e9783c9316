// Placeholder until the CPU kernels land; replaced by the real backend files.
#include "core/backend.hpp"
namespace linattn::detail::cpu {
Status linear_attention(const LinearAttentionParams&, const Exec&) { return unsupported("cpu backend: not yet implemented"); }
Status causal_conv(const CausalConvParams&, const Exec&) { return unsupported("cpu backend: not yet implemented"); }
}  // namespace linattn::detail::cpu
