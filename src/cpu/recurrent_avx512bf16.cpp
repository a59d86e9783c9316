// The fused recurrent kernel instantiated for AVX-512 with the AVX512_BF16 conversion
// (VecAvx512Bf16): bfloat16 outputs and states are rounded by one instruction per vector.
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "cpu/recurrent.hpp"
#include "cpu/simd_avx512.hpp"
#include "cpu/recurrent_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

using K = RecurrentKernel<VecAvx512Bf16>;

void run_avx512bf16(const RecurrentItem& it, const RecurrentItem* next) {
  thread_local K::Scratch scratch;  // grown on demand, reused so decode steps allocate nothing
  K::run_item(it, next, scratch);
}

}  // namespace

RecurrentImpl recurrent_avx512bf16() { return RecurrentImpl{K::NB, &run_avx512bf16}; }

}  // namespace linattn::detail::cpu
