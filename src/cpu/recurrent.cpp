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
  if (isa == Isa::kAvx512Bf16) return recurrent_avx512bf16();
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
  const int64_t items = pairs * groups;
  const int64_t run = p.T == 1 ? decode_run(items, e.pool->num_threads()) : 1;
  const bool stream = stream_outputs(p, p.B * p.T);
  e.pool->parallel_for((items + run - 1) / run, [&](int64_t task, int) {
    RecurrentItem its[kDecodeRun];
    const int64_t first = task * run, n = std::min(run, items - first);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pair = (first + i) / groups;
      const int32_t c0 = static_cast<int32_t>((first + i) % groups) * cols;
      its[i] = RecurrentItem{&p, pair / p.Hkv, static_cast<int32_t>(pair % p.Hkv), c0,
                             std::min(cols, p.dv - c0), stream};
    }
    run_items(impl, its, n);
  });
  return Status();
}

}  // namespace linattn::detail::cpu
