// Fused recurrent LinearAttention on the CPU (recurrent_kernel.hpp holds the algorithm). One
// implementation per instruction set; linear_attention_recurrent picks the active one
// (isa.hpp) and spreads (sequence, kv head, value-column range) items over the threads.
#pragma once

#include <cstdint>

#include "core/backend.hpp"
#include "cpu/isa.hpp"

namespace linattn::detail::cpu {

struct RecurrentImpl {
  int block_cols = 0;  // value columns per state block (4 vectors)
  // Sequence b, kv head h, value columns [c0, c0 + ncols), all tokens. Thread-safe.
  void (*run)(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
              int32_t ncols) = nullptr;
};

RecurrentImpl recurrent_portable();
#if defined(LINATTN_X86)
RecurrentImpl recurrent_avx2();
RecurrentImpl recurrent_avx512();
#endif

RecurrentImpl recurrent_impl(Isa isa);

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cpu
