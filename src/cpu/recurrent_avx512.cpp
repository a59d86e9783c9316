// The fused recurrent kernel instantiated for the avx512 vector operations (simd_avx512.hpp).
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "cpu/recurrent.hpp"
#include "cpu/simd_avx512.hpp"
#include "cpu/recurrent_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_avx512(const RecurrentItem& it, const RecurrentItem* next) {
  using K = RecurrentKernel<VecAvx512>;
  thread_local K::Scratch scratch;  // grown on demand, reused so decode steps allocate nothing
  K::run_item(it, next, scratch);
}

}  // namespace

RecurrentImpl recurrent_avx512() { return RecurrentImpl{RecurrentKernel<VecAvx512>::NB, &run_avx512}; }

}  // namespace linattn::detail::cpu
