// Chunked (WY) LinearAttention prefill on the CPU (chunked_kernel.hpp holds the algorithm). One
// implementation per instruction set; linear_attention_chunked picks the active one (isa.hpp)
// and spreads (sequence, kv head, value-column range) items over the threads.
//
// The path (chunked or fused recurrent) is chosen by linear_attention.cpp. Tests and the
// benchmark can pin it: LINATTN_CPU_PREFILL=auto|recurrent|chunked (read on first use), or
// force_prefill_path. A pinned chunked path still runs the recurrent kernel for inputs the
// chunked kernel does not handle (per-key-dim decay).
#pragma once

#include <cstdint>

#include "core/backend.hpp"
#include "cpu/isa.hpp"

namespace linattn::detail::cpu {

struct ChunkedImpl {
  int col_tile = 0;  // value columns are padded to multiples of this
  // Sequence b, kv head h, value columns [c0, c0 + ncols), all tokens. Thread-safe.
  void (*run)(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
              int32_t ncols) = nullptr;
};

ChunkedImpl chunked_portable();
#if defined(LINATTN_X86)
ChunkedImpl chunked_avx2();
ChunkedImpl chunked_avx512();
#endif

ChunkedImpl chunked_impl(Isa isa);

// The chunked kernel handles these inputs (per-head or no decay).
bool chunked_supports(const LinearAttentionParams& p);

Status linear_attention_chunked(const LinearAttentionParams& p, const Exec& e);

enum class PrefillPath { kAuto = 0, kRecurrent = 1, kChunked = 2 };
PrefillPath prefill_path();
// Overrides the choice for the rest of the process (tests). Not thread-safe with concurrent calls.
void force_prefill_path(PrefillPath path);

}  // namespace linattn::detail::cpu
