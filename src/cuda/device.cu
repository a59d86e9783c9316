// Device discovery and the context's workspace memory.
#include <cuda_runtime.h>

#include <string>

#include "core/backend.hpp"
#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda {

bool available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // a missing driver leaves a sticky-free error behind: clear it
    return false;
  }
  return n > 0;
}

Status device_alloc(int device_id, size_t bytes, void** out) {
  *out = nullptr;
  if (bytes == 0) return Status::ok_status();
  DeviceGuard guard(device_id);
  const cudaError_t err = cudaMalloc(out, bytes);
  if (err == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    return Status(LINATTN_ERROR_OUT_OF_MEMORY, "cuda: could not allocate " +
                                                   std::to_string(bytes) +
                                                   " bytes of device workspace on device " +
                                                   std::to_string(device_id));
  }
  return cuda_status(err, "cuda: workspace allocation");
}

void device_free(int device_id, void* ptr) {
  if (ptr == nullptr) return;
  DeviceGuard guard(device_id);
  cudaFree(ptr);
}

}  // namespace linattn::detail::cuda
