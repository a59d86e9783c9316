// Token-recurrent LinearAttention, dense calls: serves decode (T = 1), speculative/short calls
// and any prefill the chunked path does not take. The kernels and the choice between them are in
// recurrent_common.cuh (shared with the serving entry, serving_recurrent.cu); this file holds
// the dense instances.
#include "cuda/linear_attention.hpp"
#include "cuda/recurrent_common.cuh"

namespace linattn::detail::cuda {

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e) {
  return recurrent::run(p, e);
}

}  // namespace linattn::detail::cuda
