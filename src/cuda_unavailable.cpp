// The CUDA backend's entry points in a build without CUDA: every call reports that the backend
// is not there, so the dispatcher and the C ABI need no #ifdefs.
#include "core/backend.hpp"

namespace linattn::detail::cuda {

namespace {
Status not_built() {
  return Status(LINATTN_ERROR_BACKEND_UNAVAILABLE,
                "linattn was built without the CUDA backend (configure with -DLINATTN_CUDA=ON "
                "on a machine with nvcc)");
}
}  // namespace

bool available() { return false; }
Status linear_attention(const LinearAttentionParams&, const Exec&) { return not_built(); }
Status causal_conv(const CausalConvParams&, const Exec&) { return not_built(); }
size_t linear_attention_workspace_bytes(const LinearAttentionParams&, int) { return 0; }
Status linear_attention_serving(const LinearAttentionServing&, const Exec&) { return not_built(); }
Status causal_conv_serving(const CausalConvServing&, const Exec&) { return not_built(); }
size_t linear_attention_serving_workspace_bytes(const LinearAttentionServing&, int) { return 0; }
Status device_alloc(int, size_t, void** out) {
  *out = nullptr;
  return not_built();
}
void device_free(int, void*) {}

}  // namespace linattn::detail::cuda
