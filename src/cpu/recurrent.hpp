// Fused recurrent LinearAttention on the CPU (recurrent_kernel.hpp holds the algorithm). One
// implementation per instruction set; linear_attention_recurrent picks the active one
// (isa.hpp) and spreads (sequence, kv head, value-column range) items over the threads.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/backend.hpp"
#include "core/view_check.hpp"
#include "cpu/isa.hpp"
#include "cpu/streaming.hpp"

namespace linattn::detail::cpu {

// A work item: sequence b, kv head h, value columns [c0, c0 + ncols) of the call p.
// stream_out: write the output rows with streaming stores (see stream_outputs).
struct RecurrentItem {
  const LinearAttentionParams* p = nullptr;
  int64_t b = 0;
  int32_t h = 0, c0 = 0, ncols = 0;
  bool stream_out = false;
};

// Whether a call writing `tokens` output rows of p streams them (streaming.hpp; each output row
// is a strided 2 of 4 KiB slice).
inline bool stream_outputs(const LinearAttentionParams& p, int64_t tokens) {
  return tokens * p.Hout * p.dv * static_cast<int64_t>(dtype_bytes(p.act_dtype)) >=
         kStreamOutputBytes;
}

struct RecurrentImpl {
  int block_cols = 0;  // value columns per state block (4 vectors)
  // Runs item `it` over all its tokens. `next`, when given, is the item the calling thread
  // runs next: a one-token item prefetches its past state in step with its own sweeps.
  // Thread-safe.
  void (*run)(const RecurrentItem& it, const RecurrentItem* next) = nullptr;
};

// One-token items (decode) run in runs of up to this many per task, each prefetching the next
// one's state while it computes: a decode step is a stream of states with arithmetic between
// reading and writing each, and one thread's state reads otherwise stop while it computes.
constexpr int64_t kDecodeRun = 8;

// Items per run: kDecodeRun, but few enough that every thread still gets about two runs.
inline int64_t decode_run(int64_t items, int threads) {
  return std::max<int64_t>(1, std::min<int64_t>(kDecodeRun, items / (2 * int64_t{threads})));
}

// Runs items[0 .. n) on the calling thread, each told the next one.
inline void run_items(const RecurrentImpl& impl, const RecurrentItem* items, int64_t n) {
  for (int64_t i = 0; i < n; ++i) impl.run(items[i], i + 1 < n ? &items[i + 1] : nullptr);
}

RecurrentImpl recurrent_portable();
#if defined(LINATTN_X86)
RecurrentImpl recurrent_avx2();
RecurrentImpl recurrent_avx512();
RecurrentImpl recurrent_avx512bf16();
#endif

RecurrentImpl recurrent_impl(Isa isa);

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cpu
