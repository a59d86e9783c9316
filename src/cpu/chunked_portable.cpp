// The chunked prefill kernel instantiated for the portable vector operations (simd_portable.hpp).
#include "cpu/chunked_prefill.hpp"
#include "cpu/simd_portable.hpp"
#include "cpu/chunked_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_portable(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0, int32_t ncols) {
  using K = ChunkedKernel<VecPortable>;
  thread_local K::Scratch scratch;  // grown on demand, reused across calls
  K::run_item(p, b, h, c0, ncols, scratch);
}

}  // namespace

ChunkedImpl chunked_portable() { return ChunkedImpl{ChunkedKernel<VecPortable>::CT, &run_portable}; }

}  // namespace linattn::detail::cpu
