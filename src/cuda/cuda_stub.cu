// Placeholder until the CUDA kernels land.
#include <cuda_runtime.h>
#include "core/backend.hpp"
namespace linattn::detail::cuda {
bool available() { int n = 0; return cudaGetDeviceCount(&n) == cudaSuccess && n > 0; }
Status linear_attention(const LinearAttentionParams&, const Exec&) { return unsupported("cuda backend: not yet implemented"); }
Status causal_conv(const CausalConvParams&, const Exec&) { return unsupported("cuda backend: not yet implemented"); }
size_t linear_attention_workspace_bytes(const LinearAttentionParams&) { return 0; }
Status device_alloc(int, size_t, void** out) { *out = nullptr; return unsupported("cuda backend: not yet implemented"); }
void device_free(int, void*) {}
}  // namespace linattn::detail::cuda
