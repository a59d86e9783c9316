// Placeholder until the float64 oracle lands; replaced by linear_attention.cpp/causal_conv.cpp.
#include "core/backend.hpp"
namespace linattn::detail::reference {
Status linear_attention(const LinearAttentionParams&, const Exec&) { return unsupported("reference backend: not yet implemented"); }
Status causal_conv(const CausalConvParams&, const Exec&) { return unsupported("reference backend: not yet implemented"); }
}  // namespace linattn::detail::reference
