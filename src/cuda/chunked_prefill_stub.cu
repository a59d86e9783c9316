// Placeholder until the chunked prefill lands: it reports no support, so every call takes the
// token-recurrent kernel.
#include "cuda/chunked_prefill.hpp"

namespace linattn::detail::cuda {
bool chunked_prefill_supports(const LinearAttentionParams&) { return false; }
size_t chunked_prefill_workspace_bytes(const LinearAttentionParams&) { return 0; }
Status chunked_prefill(const LinearAttentionParams&, const Exec&) {
  return unsupported("chunked prefill: not implemented");
}
}  // namespace linattn::detail::cuda
