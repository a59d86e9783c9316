// The causal conv kernels instantiated for the avx512 vector operations (simd_avx512.hpp).
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "cpu/conv.hpp"
#include "cpu/conv_decode.hpp"
#include "cpu/simd_avx512.hpp"
#include "cpu/conv_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

using K = ConvKernel<VecAvx512>;

void row_avx512(const CausalConvParams& p, int64_t b, int64_t c, bool next) {
  thread_local K::Scratch scratch;
  K::channel_row(p, b, c, next, scratch);
}

void block_avx512(const CausalConvParams& p, int64_t b, int64_t c0, int64_t n) {
  thread_local K::Scratch scratch;
  K::channel_block(p, b, c0, n, scratch);
}

}  // namespace

ConvImpl conv_avx512() { return ConvImpl{&row_avx512, &block_avx512, &conv_decode_k4_avx512}; }

}  // namespace linattn::detail::cpu
