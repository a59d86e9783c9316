// The fused recurrent kernel instantiated for the portable vector operations (simd_portable.hpp).
#include "cpu/recurrent.hpp"
#include "cpu/simd_portable.hpp"
#include "cpu/recurrent_kernel.hpp"

namespace linattn::detail::cpu {
namespace {

void run_portable(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0, int32_t ncols) {
  using K = RecurrentKernel<VecPortable>;
  thread_local K::Scratch scratch;  // grown on demand, reused so decode steps allocate nothing
  K::run_item(p, b, h, c0, ncols, scratch);
}

}  // namespace

RecurrentImpl recurrent_portable() { return RecurrentImpl{RecurrentKernel<VecPortable>::NB, &run_portable}; }

}  // namespace linattn::detail::cpu
