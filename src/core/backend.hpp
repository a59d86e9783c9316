// What every backend implements. The dispatcher (src/core/api.cpp) validates the user's
// arguments into params, then calls exactly one of these. Backends never validate user input
// and never print.
#pragma once

#include <cstddef>

#include "core/params.hpp"
#include "core/serving_params.hpp"
#include "core/status.hpp"

namespace linattn::detail {

class ThreadPool;

// Per-call execution resources taken from the context.
struct Exec {
  ThreadPool* pool = nullptr;  // CPU backends: never null
  void* stream = nullptr;      // cudaStream_t for the CUDA backend
  int device_id = 0;
  void* workspace = nullptr;   // device workspace (CUDA), at least the size the backend asked for
  size_t workspace_bytes = 0;
};

namespace reference {
// float64 oracle on host memory (accepts float64 views besides the three activation types).
Status linear_attention(const LinearAttentionParams& p, const Exec& e);
Status causal_conv(const CausalConvParams& p, const Exec& e);
}  // namespace reference

namespace cpu {
Status linear_attention(const LinearAttentionParams& p, const Exec& e);
Status causal_conv(const CausalConvParams& p, const Exec& e);
}  // namespace cpu

namespace cuda {
// Compiled only with LINATTN_WITH_CUDA; the dispatcher reports LINATTN_ERROR_BACKEND_UNAVAILABLE
// otherwise.
bool available();
Status linear_attention(const LinearAttentionParams& p, const Exec& e);
Status causal_conv(const CausalConvParams& p, const Exec& e);
// Workspace a call needs on device_id (the path taken depends on what the device grants).
size_t linear_attention_workspace_bytes(const LinearAttentionParams& p, int device_id);
// Serving calls (docs/SERVING.md): index contents are resolved in the kernels; the error flag,
// when given, is cleared on the stream first and raised by a kernel that skips a sequence.
Status linear_attention_serving(const LinearAttentionServing& s, const Exec& e);
Status causal_conv_serving(const CausalConvServing& s, const Exec& e);
size_t linear_attention_serving_workspace_bytes(const LinearAttentionServing& s, int device_id);
// Device memory management for the context's workspace.
Status device_alloc(int device_id, size_t bytes, void** out);
void device_free(int device_id, void* ptr);
}  // namespace cuda

}  // namespace linattn::detail
