// GPU-suite support: a Placement that mirrors host tensors into device memory for the shared
// oracle runner, a CUDA-backend context, and the skip that keeps every GPU test green (as
// skipped) on a machine without a visible device.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "common/host_tensor.hpp"
#include "common/oracle_runner.hpp"
#include "linattn/linattn.hpp"

#define LINATTN_SKIP_WITHOUT_GPU()                                          \
  do {                                                                      \
    if (!linattn_cuda_available()) GTEST_SKIP() << "no CUDA device visible"; \
  } while (0)

#define LINATTN_CUDA_OK(expr)                                                     \
  do {                                                                            \
    const cudaError_t _e = (expr);                                                \
    ASSERT_EQ(_e, cudaSuccess) << #expr << ": " << cudaGetErrorString(_e);        \
  } while (0)

namespace linattn::test {

class CudaPlacement : public Placement {
 public:
  ~CudaPlacement() override { release_all(); }
  linattn_memory memory() const override { return LINATTN_MEMORY_CUDA; }
  void* upload(const HostTensor& t) override {
    void* d = nullptr;
    const size_t bytes = t.storage_bytes() > 0 ? t.storage_bytes() : 1;
    if (cudaMalloc(&d, bytes) != cudaSuccess) {
      ADD_FAILURE() << "cudaMalloc of " << bytes << " bytes failed";
      return nullptr;
    }
    if (t.storage_bytes() > 0) cudaMemcpy(d, t.data(), t.storage_bytes(), cudaMemcpyHostToDevice);
    owned_.push_back(d);
    return d;
  }
  void download(const void* device, HostTensor& t) override {
    if (device != nullptr && t.storage_bytes() > 0) {
      const cudaError_t e = cudaMemcpy(t.data(), device, t.storage_bytes(), cudaMemcpyDeviceToHost);
      if (e != cudaSuccess) ADD_FAILURE() << "download: " << cudaGetErrorString(e);
    }
  }
  void synchronize() override {
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) ADD_FAILURE() << "device fault after the call: " << cudaGetErrorString(e);
  }
  void release_all() override {
    for (void* d : owned_) cudaFree(d);
    owned_.clear();
  }

 private:
  std::vector<void*> owned_;
};

// One CUDA-backend context per process, on the default stream.
inline Context& cuda_context() {
  static std::unique_ptr<Context> ctx;
  if (!ctx) {
    ctx = std::make_unique<Context>();
    const Status s = Context::create(LINATTN_BACKEND_CUDA, ctx.get());
    if (!s.ok()) ADD_FAILURE() << "cuda context: " << s.to_string();
  }
  return *ctx;
}

}  // namespace linattn::test
