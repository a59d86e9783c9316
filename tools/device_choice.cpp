#include <cstdio>

#include "commands.hpp"

namespace linattn::tool {

bool resolve_device(const std::string& device, DeviceChoice* out, std::string* error) {
  if (device == "cpu") {
    *out = DeviceChoice{};
    return true;
  }
  if (device == "cuda" || device == "auto") {
    if (linattn_cuda_available()) {
      *out = DeviceChoice{LINATTN_BACKEND_CUDA, LINATTN_MEMORY_CUDA, "cuda"};
      return true;
    }
    if (device == "auto") {
      *out = DeviceChoice{};
      return true;
    }
    *error = "--device cuda: no CUDA device is available (this build has no CUDA backend, or no "
             "GPU is visible)";
    return false;
  }
  *error = "--device must be cpu, cuda or auto, got '" + device + "'";
  return false;
}

bool open_context(linattn_backend backend, int threads, Context* ctx) {
  Status s = Context::create(backend, ctx, threads);
  if (!s.ok()) {
    std::fprintf(stderr, "error: cannot create a context: %s\n", s.to_string().c_str());
    return false;
  }
  return true;
}

}  // namespace linattn::tool
