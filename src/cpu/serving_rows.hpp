// Batched CPU entries for the fast path of serving calls (docs/SERVING.md "How the host backends
// run it"): every sequence of a serving call is one row of a table holding its token range and
// the addresses of the state blocks it reads and writes, and one call runs the whole table with
// the dense kernels' own work split ((row, head, column range) items for LinearAttention,
// (row, channel block) items for the conv) and one fork/join. PAD sequences are simply not in
// the table. Host-only (plain pointers into host memory); src/core/serving.cpp builds the table
// from a checked plan, so nothing here validates.
#pragma once

#include <cstdint>

#include "core/backend.hpp"
#include "core/params.hpp"

namespace linattn::detail::cpu {

struct SequenceRow {
  int64_t b = 0;    // batch row of the token tensors (0 when packed)
  int64_t t0 = 0;   // first token of the sequence within that row
  int64_t len = 0;  // tokens; 0 = the state is only carried over (read block to written block)
  const void* past = nullptr;  // first element of the state block read; nullptr = zeros
  void* present = nullptr;     // first element of the state block written
  bool in_place = false;       // past and present are the same block
};

// `p` is the serving call's params: token tensors, dtypes, head counts and every stride are
// used as they are, while B, T, past and present are replaced row by row (a row runs as the
// dense call (1, len) on its blocks; past_sh/past_sk/past_dtype and pres_sh/pres_sk/
// present_dtype give the blocks' form). The rows' written blocks must be distinct.
Status linear_attention_rows(const LinearAttentionParams& p, const SequenceRow* rows, int64_t n,
                             const Exec& e);
Status causal_conv_rows(const CausalConvParams& p, const SequenceRow* rows, int64_t n,
                        const Exec& e);

}  // namespace linattn::detail::cpu
