// The chunked prefill kernel instantiated for the avx512 vector operations (simd_avx512.hpp).
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "cpu/chunked_prefill.hpp"
#include "cpu/simd_avx512.hpp"
#include "cpu/chunked_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_avx512(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0, int32_t ncols) {
  using K = ChunkedKernel<VecAvx512>;
  thread_local K::Scratch scratch;  // grown on demand, reused across calls
  K::run_item(p, b, h, c0, ncols, scratch);
}

}  // namespace

ChunkedImpl chunked_avx512() { return ChunkedImpl{ChunkedKernel<VecAvx512>::CT, &run_avx512}; }

}  // namespace linattn::detail::cpu
