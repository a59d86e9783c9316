// CausalConvWithState serving kernels. (Not implemented yet.)
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

Status causal_conv_serving_kernels(const CausalConvServing&, const Exec&) {
  return unsupported("CausalConvWithState (cuda): serving calls are not implemented yet");
}

}  // namespace linattn::detail::cuda
