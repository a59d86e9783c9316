// The fused recurrent kernel instantiated for the portable vector operations (simd_portable.hpp).
#include "cpu/recurrent.hpp"
#include "cpu/simd_portable.hpp"
#include "cpu/recurrent_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_portable(const RecurrentItem& it, const RecurrentItem* next) {
  using K = RecurrentKernel<VecPortable>;
  thread_local K::Scratch scratch;  // grown on demand, reused so decode steps allocate nothing
  K::run_item(it, next, scratch);
}

}  // namespace

RecurrentImpl recurrent_portable() { return RecurrentImpl{RecurrentKernel<VecPortable>::NB, &run_portable}; }

}  // namespace linattn::detail::cpu
