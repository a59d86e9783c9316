// bulk_copy_available(): whether the running binary and device have the bulk copies of
// bulk_copy.cuh.
#include "cuda/bulk_copy.cuh"

#include <atomic>

namespace linattn::detail::cuda {
namespace {

__global__ void bulk_probe_kernel() {}

}  // namespace

bool bulk_copy_available() {
  // Cached per device (0: unknown, 1: no, 2: yes): the device's compute capability and the PTX
  // level this binary's kernels were compiled at for it.
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cached[kMaxDevices];
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0) return false;
  if (dev < kMaxDevices && cached[dev].load(std::memory_order_relaxed) != 0) {
    return cached[dev].load(std::memory_order_relaxed) == 2;
  }
  int major = 0;
  cudaFuncAttributes fa{};
  const bool ok = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
                  major >= 9 && cudaFuncGetAttributes(&fa, bulk_probe_kernel) == cudaSuccess && fa.ptxVersion >= 90;
  cudaGetLastError();  // a failed query must not surface at the next launch check
  if (dev < kMaxDevices) cached[dev].store(ok ? 2 : 1, std::memory_order_relaxed);
  return ok;
}

}  // namespace linattn::detail::cuda
