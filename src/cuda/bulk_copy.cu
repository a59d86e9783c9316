// bulk_copy_available(): whether the running binary and device have the bulk copies of
// bulk_copy.cuh.
#include "cuda/bulk_copy.cuh"

#include <array>
#include <atomic>

namespace linattn::detail::cuda {
namespace {

__global__ void bulk_probe_kernel() {}

}  // namespace

bool bulk_copy_available() {
  // The device's compute capability and the PTX level this binary's kernels were compiled at for
  // it.
  static std::array<std::atomic<int>, 64> cache{};
  return asked_once_per_device(cache, [](int dev) {
    cudaFuncAttributes fa{};
    return device_attribute<cudaDevAttrComputeCapabilityMajor>(dev) >= 9 &&
           cudaFuncGetAttributes(&fa, bulk_probe_kernel) == cudaSuccess && fa.ptxVersion >= 90;
  });
}

}  // namespace linattn::detail::cuda
