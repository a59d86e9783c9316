// The CUDA serving entries: clear the error flag on the stream (a memset node, capturable in a
// graph), then run the kernels that implement the call. Long key-major prefills that the
// chunked path implements go there; everything else (decode, speculative steps, value-major
// pools, short or mixed batches) takes the token-recurrent serving kernel.
#include <cuda_runtime.h>

#include "cuda/chunked_prefill.hpp"
#include "cuda/cuda_common.cuh"
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

namespace {
Status clear_flag(int32_t* flag, cudaStream_t s) {
  if (flag == nullptr) return Status::ok_status();
  return cuda_status(cudaMemsetAsync(flag, 0, sizeof(int32_t), s), "serving: clearing error_flag");
}

bool use_chunked(const LinearAttentionServing& s, int device_id) {
  return chunked_prefill_serving_supports(s) && chunked_prefill_fits_device(s.p.dk, device_id);
}
}  // namespace

Status linear_attention_serving(const LinearAttentionServing& s, const Exec& e) {
  DeviceGuard guard(e.device_id);
  LINATTN_RETURN_IF_ERROR(clear_flag(s.ix.error_flag, static_cast<cudaStream_t>(e.stream)));
  if (use_chunked(s, e.device_id)) return chunked_prefill_serving(s, e);
  return linear_attention_recurrent_serving(s, e);
}

size_t linear_attention_serving_workspace_bytes(const LinearAttentionServing& s, int device_id) {
  DeviceGuard guard(device_id);
  return use_chunked(s, device_id) ? chunked_prefill_serving_workspace_bytes(s) : 0;
}

Status causal_conv_serving(const CausalConvServing& s, const Exec& e) {
  DeviceGuard guard(e.device_id);
  LINATTN_RETURN_IF_ERROR(clear_flag(s.ix.error_flag, static_cast<cudaStream_t>(e.stream)));
  return causal_conv_serving_kernels(s, e);
}

}  // namespace linattn::detail::cuda
