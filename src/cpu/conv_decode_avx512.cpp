// The AVX-512 conv decode step (conv_decode_avx512.hpp) with the integer bfloat16 rounding.
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "cpu/conv_decode_avx512.hpp"

namespace linattn::detail::cpu {

void conv_decode_k4_avx512(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0,
                           int64_t n) {
  decode512::decode_k4_any<VecAvx512>(p, b0, b1, c0, n);
}

}  // namespace linattn::detail::cpu
