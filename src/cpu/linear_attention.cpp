// CPU LinearAttention entry point: the chunked (WY) kernel (chunked_kernel.hpp) or the fused
// recurrent kernel (recurrent_kernel.hpp), by rule, length and head size. Measured on a 2-core
// Zen 3 with AVX2 (docs/PERFORMANCE.md, CPU section, 2026-11-23), 2 threads, both paths pinned
// and alternated:
// - since the recurrent kernel steps two tokens per state sweep, it is the faster one for every
//   rule at head sizes up to 128: linear and gated 1.10-1.20x at d = 128 (T = 256-4096, 8 and 32
//   heads) and 1.17-1.23x at d = 64; the delta rules 1.4x (the chunked form adds T = (I + A)^-1,
//   W = T diag(b L) K and W S0 on top of the same 3 d^2 state work per token);
// - d = 256, rules without delta, T = 2048: the chunked kernel is 1.02-1.06x faster (its
//   intra-chunk work, about C d per token, is small next to the state work, 3 d^2), so it is
//   chosen there from T >= 128;
// - per-key-dim decay: recurrent only (no overflow-safe chunked form here);
// - decode and short prompts (T < 128): recurrent.
// LINATTN_CPU_PREFILL=recurrent|chunked (chunked_prefill.hpp) overrides the choice.
//
// linear_attention_rows (serving_rows.hpp) runs a table of sequences as one call: each row is
// the dense call (1, len) on its own state blocks, with the same kernel choice per row, and the
// (row, kv head, value-column range) items of all rows go to the threads in one fork/join.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/backend.hpp"
#include "core/thread_pool.hpp"
#include "core/view_check.hpp"
#include "cpu/chunked_prefill.hpp"
#include "cpu/recurrent.hpp"
#include "cpu/serving_rows.hpp"

namespace linattn::detail::cpu {
namespace {

constexpr int64_t kChunkedMinTokens = 128;
constexpr int32_t kChunkedMinHeadDim = 256;

bool use_chunked(const LinearAttentionParams& p) {
  if (!chunked_supports(p)) return false;
  switch (prefill_path()) {
    case PrefillPath::kRecurrent: return false;
    case PrefillPath::kChunked: return true;
    case PrefillPath::kAuto: break;
  }
  return !p.delta && p.T >= kChunkedMinTokens && p.dk >= kChunkedMinHeadDim &&
         p.dv >= kChunkedMinHeadDim;
}

const void* at(const void* base, int64_t elems, linattn_dtype t) {
  return static_cast<const char*>(base) + elems * static_cast<int64_t>(dtype_bytes(t));
}
void* at(void* base, int64_t elems, linattn_dtype t) {
  return static_cast<char*>(base) + elems * static_cast<int64_t>(dtype_bytes(t));
}

// The dense params (1, len) of one row: token tensors offset to its first token, its blocks.
LinearAttentionParams row_params(const LinearAttentionParams& p, const SequenceRow& r) {
  LinearAttentionParams q = p;
  q.B = 1;
  q.T = r.len;
  const linattn_dtype a = p.act_dtype;
  q.q = at(p.q, r.b * p.q_sb + r.t0 * p.q_st, a);
  q.k = at(p.k, r.b * p.k_sb + r.t0 * p.k_st, a);
  q.v = at(p.v, r.b * p.v_sb + r.t0 * p.v_st, a);
  if (p.decay) q.decay = at(p.decay, r.b * p.g_sb + r.t0 * p.g_st, a);
  if (p.beta) q.beta = at(p.beta, r.b * p.beta_sb + r.t0 * p.beta_st, a);
  q.out = at(p.out, r.b * p.o_sb + r.t0 * p.o_st, a);
  q.past = r.past;
  q.present = r.present;
  q.in_place = r.in_place;
  return q;
}

// One work item of a row table: row, kv head, value columns [c0, c0 + ncols).
struct RowItem {
  int64_t row = 0;
  int32_t h = 0, c0 = 0, ncols = 0;
  bool chunked = false;
  int64_t cost = 0;  // tokens (at least 1: a row without tokens still moves its state)
};

}  // namespace

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  return use_chunked(p) ? linear_attention_chunked(p, e) : linear_attention_recurrent(p, e);
}

// The dense split (recurrent.cpp, chunked_prefill.cpp) cuts heads into column ranges until there
// are about two items per thread; here the same rule is applied to the work of each row: a
// (row, head) pair is cut until it is no larger than 1 / (2 threads) of the whole call's work,
// which for rows of equal length is exactly the dense rule, and for a long prompt packed with
// short ones splits the long one only. Items then run longest first, so no thread is left with
// a long item at the end.
Status linear_attention_rows(const LinearAttentionParams& p, const SequenceRow* rows, int64_t n,
                             const Exec& e) {
  if (n == 0 || p.Hkv == 0) return Status();
  const RecurrentImpl rec = recurrent_impl(active_isa());
  const ChunkedImpl chk = chunked_impl(active_isa());
  std::vector<LinearAttentionParams> rp(static_cast<size_t>(n));
  std::vector<unsigned char> chunked(static_cast<size_t>(n));
  int64_t total = 0, tokens = 0;
  for (int64_t r = 0; r < n; ++r) {
    rp[r] = row_params(p, rows[r]);
    chunked[r] = use_chunked(rp[r]);
    total += std::max<int64_t>(rows[r].len, 1) * p.Hkv;
    tokens += rows[r].len;
  }
  const bool stream = stream_outputs(p, tokens);
  const double target = static_cast<double>(total) / (2.0 * e.pool->num_threads());
  std::vector<RowItem> items;
  items.reserve(static_cast<size_t>(n * p.Hkv));
  for (int64_t r = 0; r < n; ++r) {
    const int tile = chunked[r] ? chk.col_tile : rec.block_cols;
    const int ntiles = (p.dv + tile - 1) / tile;
    const int64_t cost = std::max<int64_t>(rows[r].len, 1);
    int groups = 1;
    while (static_cast<double>(cost) / groups > target && groups * 2 <= ntiles) groups *= 2;
    const int per_group = (ntiles + groups - 1) / groups;
    groups = (ntiles + per_group - 1) / per_group;
    const int32_t cols = per_group * tile;
    for (int32_t h = 0; h < p.Hkv; ++h)
      for (int g = 0; g < groups; ++g) {
        const int32_t c0 = g * cols;
        items.push_back(RowItem{r, h, c0, std::min(cols, p.dv - c0), chunked[r] != 0,
                                cost / groups});
      }
  }
  // Decode batches (every item one token) come out already in order: no sort to pay for.
  const auto longer = [](const RowItem& a, const RowItem& b) { return a.cost > b.cost; };
  if (!std::is_sorted(items.begin(), items.end(), longer))
    std::stable_sort(items.begin(), items.end(), longer);
  // Tasks of one item, except runs of up to kDecodeRun one-token recurrent items (decode rows,
  // last in the order), which run back to back so each can prefetch the next one's state.
  const auto decode = [&](size_t k) { return !items[k].chunked && rows[items[k].row].len == 1; };
  int64_t decode_items = 0;
  for (size_t k = 0; k < items.size(); ++k) decode_items += decode(k) ? 1 : 0;
  const size_t run = static_cast<size_t>(decode_run(decode_items, e.pool->num_threads()));
  std::vector<int64_t> starts;
  starts.reserve(items.size() + 1);
  for (size_t i = 0; i < items.size();) {
    starts.push_back(static_cast<int64_t>(i));
    size_t j = i + 1;
    if (decode(i))
      while (j < items.size() && j - i < run && decode(j)) ++j;
    i = j;
  }
  starts.push_back(static_cast<int64_t>(items.size()));
  e.pool->parallel_for(static_cast<int64_t>(starts.size()) - 1, [&](int64_t task, int) {
    const int64_t first = starts[task], n = starts[task + 1] - first;
    if (items[first].chunked) {
      const RowItem& it = items[first];
      chk.run(rp[it.row], 0, it.h, it.c0, it.ncols);
      return;
    }
    RecurrentItem its[kDecodeRun];
    for (int64_t i = 0; i < n; ++i) {
      const RowItem& it = items[first + i];
      its[i] = RecurrentItem{&rp[it.row], 0, it.h, it.c0, it.ncols, stream};
    }
    run_items(rec, its, n);
  });
  return Status();
}

}  // namespace linattn::detail::cpu
