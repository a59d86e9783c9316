// GPU-suite support: a Placement that mirrors host tensors into device memory for the shared
// oracle runner, a CUDA-backend context, a stream with a context and a captured graph for the
// graph tests, and the skip that keeps every GPU test green (as skipped) on a machine without
// a visible device.
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

// A non-blocking stream, a CUDA-backend context on it, and a graph captured from calls made
// through that context, for the graph-capture tests. All three are destroyed with it, also
// when a test stops at a failed assertion.
class GraphStream {
 public:
  GraphStream() {
    if (cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking) != cudaSuccess) {
      stream_ = nullptr;
      ADD_FAILURE() << "cudaStreamCreateWithFlags failed";
      return;
    }
    ContextOptions o = linattn_context_default_options();
    o.backend = LINATTN_BACKEND_CUDA;
    o.stream = stream_;
    const Status s = Context::create(o, &ctx_);
    if (!s.ok()) ADD_FAILURE() << "cuda context on a stream: " << s.to_string();
    ok_ = s.ok();
  }
  ~GraphStream() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  GraphStream(const GraphStream&) = delete;
  GraphStream& operator=(const GraphStream&) = delete;

  bool ok() const { return ok_; }
  Context& ctx() { return ctx_; }

  // Captures what `calls` enqueues through ctx() (it returns the status of its calls) and
  // instantiates the graph.
  template <class F>
  ::testing::AssertionResult capture(F&& calls) {
    cudaError_t e = cudaStreamBeginCapture(stream_, cudaStreamCaptureModeGlobal);
    if (e != cudaSuccess) return failure("cudaStreamBeginCapture", e);
    const Status s = calls();
    e = cudaStreamEndCapture(stream_, &graph_);
    if (e != cudaSuccess) return failure("cudaStreamEndCapture", e);
    if (!s.ok()) return ::testing::AssertionFailure() << "captured call: " << s.to_string();
    e = cudaGraphInstantiate(&exec_, graph_, 0);
    if (e != cudaSuccess) return failure("cudaGraphInstantiate", e);
    return ::testing::AssertionSuccess();
  }

  // Launches the captured graph on the stream and waits for it. The stream is non-blocking, so
  // it is not ordered after the tests' cudaMemcpy and cudaMemset on the legacy stream (memsets
  // and pageable copies to the device may return before they are done): the device is
  // synchronized first, or a poisoning memset could land after the graph's writes.
  ::testing::AssertionResult replay() {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) return failure("cudaDeviceSynchronize", e);
    e = cudaGraphLaunch(exec_, stream_);
    if (e != cudaSuccess) return failure("cudaGraphLaunch", e);
    e = cudaStreamSynchronize(stream_);
    if (e != cudaSuccess) return failure("cudaStreamSynchronize", e);
    return ::testing::AssertionSuccess();
  }

 private:
  static ::testing::AssertionResult failure(const char* what, cudaError_t e) {
    return ::testing::AssertionFailure() << what << ": " << cudaGetErrorString(e);
  }

  cudaStream_t stream_ = nullptr;
  Context ctx_;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  bool ok_ = false;
};

}  // namespace linattn::test
