// The fused recurrent kernel instantiated for the avx2 vector operations (simd_avx2.hpp).
#include "cpu/recurrent.hpp"
#include "cpu/simd_avx2.hpp"
#include "cpu/recurrent_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_avx2(const RecurrentItem& it, const RecurrentItem* next) {
  using K = RecurrentKernel<VecAvx2>;
  thread_local K::Scratch scratch;  // grown on demand, reused so decode steps allocate nothing
  K::run_item(it, next, scratch);
}

}  // namespace

RecurrentImpl recurrent_avx2() { return RecurrentImpl{RecurrentKernel<VecAvx2>::NB, &run_avx2}; }

}  // namespace linattn::detail::cpu
