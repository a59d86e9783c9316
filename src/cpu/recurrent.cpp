// Work split of the fused recurrent kernel: items are (sequence, kv head, range of value
// columns). Columns are independent, so when there are fewer (sequence, head) pairs than about
// two per thread (one long sequence with few heads), heads are cut into column ranges so every
// thread has work.
#include "cpu/recurrent.hpp"

#include <algorithm>

#include "core/thread_pool.hpp"

namespace linattn::detail::cpu {

RecurrentImpl recurrent_impl(Isa isa) {
#if defined(LINATTN_X86)
  if (isa == Isa::kAvx512) return recurrent_avx512();
  if (isa == Isa::kAvx2) return recurrent_avx2();
#endif
  (void)isa;
  return recurrent_portable();
}

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e) {
  const RecurrentImpl impl = recurrent_impl(active_isa());
  const int64_t pairs = p.B * p.Hkv;
  if (pairs == 0) return Status();
  const int nblocks = (p.dv + impl.block_cols - 1) / impl.block_cols;
  int groups = 1;
  while (pairs * groups < 2 * e.pool->num_threads() && groups * 2 <= nblocks) groups *= 2;
  const int per_group = (nblocks + groups - 1) / groups;  // blocks per item
  groups = (nblocks + per_group - 1) / per_group;
  const int32_t cols = per_group * impl.block_cols;
  e.pool->parallel_for(pairs * groups, [&](int64_t item, int) {
    const int64_t pair = item / groups;
    const int32_t c0 = static_cast<int32_t>(item % groups) * cols;
    impl.run(p, pair / p.Hkv, static_cast<int32_t>(pair % p.Hkv), c0, std::min(cols, p.dv - c0));
  });
  return Status();
}

}  // namespace linattn::detail::cpu
