// The CUDA LinearAttention entry: long calls that the chunked prefill implements go there, the
// rest (decode, short prefill, every other shape or dtype, devices that cannot give the chunked
// scan its shared memory) to the token-recurrent kernel.
#include "cuda/chunked_prefill.hpp"
#include "cuda/cuda_common.cuh"
#include "cuda/linear_attention.hpp"

namespace linattn::detail::cuda {

namespace {
bool use_chunked(const LinearAttentionParams& p, int device_id) {
  return p.T >= kChunkedPrefillMinTokens && chunked_prefill_supports(p) &&
         chunked_prefill_fits_device(p.dk, device_id);
}
}  // namespace

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  DeviceGuard guard(e.device_id);  // for both paths: the kernels launch on the context's device
  if (use_chunked(p, e.device_id)) return chunked_prefill(p, e);
  return linear_attention_recurrent(p, e);
}

size_t linear_attention_workspace_bytes(const LinearAttentionParams& p, int device_id) {
  DeviceGuard guard(device_id);  // the plan's segment count asks the device for its SMs
  return use_chunked(p, device_id) ? chunked_prefill_workspace_bytes(p) : 0;
}

}  // namespace linattn::detail::cuda
