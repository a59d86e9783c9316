// The causal conv kernels (conv_kernel.hpp, conv_decode_avx512.hpp) instantiated for AVX-512
// with the AVX512_BF16 conversion instruction (VecAvx512Bf16): bfloat16 outputs and states are
// rounded by one instruction instead of about ten integer operations per vector.
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "cpu/conv.hpp"
#include "cpu/conv_decode_avx512.hpp"
#include "cpu/conv_kernel.hpp"
#include "cpu/simd_avx512.hpp"

namespace linattn::detail::cpu {
namespace {

using K = ConvKernel<VecAvx512Bf16>;

void row_avx512bf16(const CausalConvParams& p, int64_t b, int64_t c, bool next) {
  if (conv_row_bf16dot_fits(p)) return conv_row_bf16dot(p, b, c, next);
  thread_local K::Scratch scratch;
  K::channel_row(p, b, c, next, scratch);
}

void block_avx512bf16(const CausalConvParams& p, int64_t b, int64_t c0, int64_t n) {
  thread_local K::Scratch scratch;
  K::channel_block(p, b, c0, n, scratch);
}

void decode_avx512bf16(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0,
                       int64_t n) {
  decode512::decode_k4_any<VecAvx512Bf16>(p, b0, b1, c0, n);
}

}  // namespace

ConvImpl conv_avx512bf16() {
  return ConvImpl{&row_avx512bf16, &block_avx512bf16, &decode_avx512bf16};
}

}  // namespace linattn::detail::cpu
