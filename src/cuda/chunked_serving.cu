// Chunked prefill for serving calls. (Not implemented yet: every serving call is recurrent.)
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

bool chunked_prefill_serving_supports(const LinearAttentionServing&) { return false; }
size_t chunked_prefill_serving_workspace_bytes(const LinearAttentionServing&) { return 0; }
Status chunked_prefill_serving(const LinearAttentionServing&, const Exec&) {
  return unsupported("LinearAttention (cuda): chunked serving prefill is not implemented yet");
}

}  // namespace linattn::detail::cuda
