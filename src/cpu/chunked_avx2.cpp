// The chunked prefill kernel instantiated for the avx2 vector operations (simd_avx2.hpp).
#include "cpu/chunked_prefill.hpp"
#include "cpu/simd_avx2.hpp"
#include "cpu/chunked_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_avx2(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0, int32_t ncols) {
  using K = ChunkedKernel<VecAvx2>;
  thread_local K::Scratch scratch;  // grown on demand, reused across calls
  K::run_item(p, b, h, c0, ncols, scratch);
}

}  // namespace

ChunkedImpl chunked_avx2() { return ChunkedImpl{ChunkedKernel<VecAvx2>::CT, &run_avx2}; }

}  // namespace linattn::detail::cpu
