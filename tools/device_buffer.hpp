// Device memory for `--device cuda`: an owning cudaMalloc'd buffer and host<->device copies.
// Compiled against the CUDA runtime only when the tool is built with LINATTN_WITH_CUDA; without
// it every call fails with a message saying the build has no CUDA backend.
#pragma once

#include <cstddef>
#include <string>

namespace linattn::tool {

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;

  bool allocate(size_t bytes, std::string* error);
  bool upload(const void* src, size_t bytes, std::string* error);
  bool download(void* dst, size_t bytes, std::string* error) const;
  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void release();
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// Waits for all device work (used around timed regions and before reading results).
bool device_synchronize(std::string* error);

}  // namespace linattn::tool
