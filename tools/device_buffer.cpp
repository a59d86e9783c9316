#include "device_buffer.hpp"

#include <utility>

#if defined(LINATTN_WITH_CUDA)
#include <cuda_runtime.h>
#endif

namespace linattn::tool {

DeviceBuffer::~DeviceBuffer() { release(); }

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept
    : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    release();
    ptr_ = std::exchange(o.ptr_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

#if defined(LINATTN_WITH_CUDA)

namespace {
// Set once any device buffer exists: only then is there device work to wait for.
bool g_device_used = false;

bool cuda_ok(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return true;
  if (error) *error = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}
}  // namespace

void DeviceBuffer::release() {
  if (ptr_) cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
}

bool DeviceBuffer::allocate(size_t bytes, std::string* error) {
  release();
  // A zero-size tensor still gets a valid (1-byte) pointer so that views are never null.
  void* p = nullptr;
  if (!cuda_ok(cudaMalloc(&p, bytes == 0 ? 1 : bytes), "cudaMalloc", error)) return false;
  g_device_used = true;
  ptr_ = p;
  bytes_ = bytes;
  return true;
}

bool DeviceBuffer::upload(const void* src, size_t bytes, std::string* error) {
  if (bytes > bytes_) {
    if (error) *error = "upload larger than the device buffer";
    return false;
  }
  if (bytes == 0) return true;
  return cuda_ok(cudaMemcpy(ptr_, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy H2D", error);
}

bool DeviceBuffer::download(void* dst, size_t bytes, std::string* error) const {
  if (bytes > bytes_) {
    if (error) *error = "download larger than the device buffer";
    return false;
  }
  if (bytes == 0) return true;
  return cuda_ok(cudaMemcpy(dst, ptr_, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy D2H", error);
}

bool device_synchronize(std::string* error) {
  // A CPU run in a CUDA build must not touch the CUDA runtime (there may be no driver).
  if (!g_device_used) return true;
  return cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize", error);
}

#else  // !LINATTN_WITH_CUDA

namespace {
bool no_cuda(std::string* error) {
  if (error) *error = "this build of linattn has no CUDA backend (configure with LINATTN_CUDA=ON)";
  return false;
}
}  // namespace

void DeviceBuffer::release() {
  ptr_ = nullptr;
  bytes_ = 0;
}
bool DeviceBuffer::allocate(size_t, std::string* error) { return no_cuda(error); }
bool DeviceBuffer::upload(const void*, size_t, std::string* error) { return no_cuda(error); }
bool DeviceBuffer::download(void*, size_t, std::string* error) const { return no_cuda(error); }
bool device_synchronize(std::string*) { return true; }

#endif

}  // namespace linattn::tool
