// The causal conv kernels instantiated for the avx2 vector operations (simd_avx2.hpp).

#include "cpu/conv.hpp"
#include "cpu/conv_decode.hpp"
#include "cpu/simd_avx2.hpp"
#include "cpu/conv_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

using K = ConvKernel<VecAvx2>;

void row_avx2(const CausalConvParams& p, int64_t b, int64_t c, bool next) {
  thread_local K::Scratch scratch;
  K::channel_row(p, b, c, next, scratch);
}

void block_avx2(const CausalConvParams& p, int64_t b, int64_t c0, int64_t n) {
  thread_local K::Scratch scratch;
  K::channel_block(p, b, c0, n, scratch);
}

}  // namespace

ConvImpl conv_avx2() { return ConvImpl{&row_avx2, &block_avx2, &conv_decode_k4_avx2}; }

}  // namespace linattn::detail::cpu
