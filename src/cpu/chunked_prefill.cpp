// Work split of the chunked kernel: items are (sequence, kv head, range of value columns). Value
// columns are independent, so when there are fewer (sequence, head) pairs than about two per
// thread, heads are cut into column ranges (each range recomputes the state-independent part
// of every chunk, which is cheaper than idle threads).
#include "cpu/chunked_prefill.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "core/thread_pool.hpp"

namespace linattn::detail::cpu {
namespace {

PrefillPath initial_path() {
  const char* env = std::getenv("LINATTN_CPU_PREFILL");
  if (env == nullptr) return PrefillPath::kAuto;
  if (std::strcmp(env, "recurrent") == 0) return PrefillPath::kRecurrent;
  if (std::strcmp(env, "chunked") == 0) return PrefillPath::kChunked;
  return PrefillPath::kAuto;
}

std::atomic<int>& chosen_path() {
  static std::atomic<int> path{static_cast<int>(initial_path())};
  return path;
}

}  // namespace

PrefillPath prefill_path() {
  return static_cast<PrefillPath>(chosen_path().load(std::memory_order_relaxed));
}

void force_prefill_path(PrefillPath path) {
  chosen_path().store(static_cast<int>(path), std::memory_order_relaxed);
}

ChunkedImpl chunked_impl(Isa isa) {
#if defined(LINATTN_X86)
  if (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16) return chunked_avx512();
  if (isa == Isa::kAvx2) return chunked_avx2();
#endif
  (void)isa;
  return chunked_portable();
}

bool chunked_supports(const LinearAttentionParams& p) {
  return !(p.gated && p.decay_per_key_dim);
}

Status linear_attention_chunked(const LinearAttentionParams& p, const Exec& e) {
  const ChunkedImpl impl = chunked_impl(active_isa());
  const int64_t pairs = p.B * p.Hkv;
  if (pairs == 0) return Status();
  const int ntiles = (p.dv + impl.col_tile - 1) / impl.col_tile;
  int groups = 1;
  while (pairs * groups < 2 * e.pool->num_threads() && groups * 2 <= ntiles) groups *= 2;
  const int per_group = (ntiles + groups - 1) / groups;
  groups = (ntiles + per_group - 1) / per_group;
  const int32_t cols = per_group * impl.col_tile;
  e.pool->parallel_for(pairs * groups, [&](int64_t item, int) {
    const int64_t pair = item / groups;
    const int32_t c0 = static_cast<int32_t>(item % groups) * cols;
    impl.run(p, pair / p.Hkv, static_cast<int32_t>(pair % p.Hkv), c0, std::min(cols, p.dv - c0));
  });
  return Status();
}

}  // namespace linattn::detail::cpu
