// Token-recurrent LinearAttention for serving calls. (Not implemented yet.)
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

Status linear_attention_recurrent_serving(const LinearAttentionServing&, const Exec&) {
  return unsupported("LinearAttention (cuda): serving calls are not implemented yet");
}

}  // namespace linattn::detail::cuda
