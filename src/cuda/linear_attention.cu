// The CUDA LinearAttention entry: long calls that the chunked prefill implements go there, the
// rest (decode, short prefill, every other shape or dtype) to the token-recurrent kernel.
#include "cuda/chunked_prefill.hpp"
#include "cuda/linear_attention.hpp"

namespace linattn::detail::cuda {

namespace {
bool use_chunked(const LinearAttentionParams& p) {
  return p.T >= kChunkedPrefillMinTokens && chunked_prefill_supports(p);
}
}  // namespace

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  if (use_chunked(p)) return chunked_prefill(p, e);
  return linear_attention_recurrent(p, e);
}

size_t linear_attention_workspace_bytes(const LinearAttentionParams& p) {
  return use_chunked(p) ? chunked_prefill_workspace_bytes(p) : 0;
}

}  // namespace linattn::detail::cuda
