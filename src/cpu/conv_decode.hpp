// The decode step of CausalConvWithState in its most common form: L = 1, k = 4, float32,
// float16 or bfloat16 activations and state (past and present of one type), a contiguous
// (C, 1, 4) weight and (B, C, 3) state rows. Each channel's new state is (s1, s2, x) and
// y = act(b + w0 s0 + w1 s1 + w2 s2 + w3 x), so the state rows are read and written in place,
// three channels' values interleaved, and de-interleaved into registers with shuffles (AVX2:
// in-lane blends; AVX-512: two-table permutes) instead of being transposed through a scratch
// buffer.
#pragma once

#include <cstdint>

#include "core/params.hpp"

namespace linattn::detail::cpu {

inline bool conv_decode_dtype(linattn_dtype t) {
  return t == LINATTN_FLOAT32 || t == LINATTN_FLOAT16 || t == LINATTN_BFLOAT16;
}

inline bool conv_decode_k4_fits(const CausalConvParams& p) {
  return p.L == 1 && p.K == 4 && p.x_sc == 1 && p.y_sc == 1 && conv_decode_dtype(p.act_dtype) &&
         p.w_sc == 4 && p.w_sk == 1 && (p.bias == nullptr || p.bias_sc == 1) &&
         (p.past == nullptr || (p.past_dtype == p.present_dtype && p.past_sc == 3)) &&
         conv_decode_dtype(p.present_dtype) && p.pres_sc == 3;
}

// Channels [c0, c0 + n) of batches [b0, b1); requires conv_decode_k4_fits(p).
#if defined(LINATTN_X86)
void conv_decode_k4_avx2(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0,
                         int64_t n);
void conv_decode_k4_avx512(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0,
                           int64_t n);
#endif

}  // namespace linattn::detail::cpu
