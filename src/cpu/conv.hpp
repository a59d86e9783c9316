// CausalConvWithState kernels per instruction set (conv_kernel.hpp); causal_conv.cpp holds the
// portable loops and the work split, and calls these when the active set has them.
#pragma once

#include <cstdint>

#include "core/params.hpp"
#include "cpu/isa.hpp"

namespace linattn::detail::cpu {

struct ConvImpl {
  // Channels first with time stride 1 (x_sl = y_sl = 1): channel c of batch b; `next`: the
  // calling thread runs channel c + 1 of batch b next.
  void (*row)(const CausalConvParams& p, int64_t b, int64_t c, bool next) = nullptr;
  // Channel stride 1: channels [c0, c0 + n) of batch b.
  void (*block)(const CausalConvParams& p, int64_t b, int64_t c0, int64_t n) = nullptr;
  // The decode step L = 1, k = 4 (conv_decode.hpp): channels [c0, c0 + n) of batches [b0, b1).
  void (*decode_k4)(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0,
                    int64_t n) = nullptr;
};

#if defined(LINATTN_X86)
ConvImpl conv_avx2();
ConvImpl conv_avx512();
ConvImpl conv_avx512bf16();
// Channels-first bfloat16 rows with k = 4 and L >= 128 on AVX512_BF16 (pairs of taps as
// bfloat16 dot products; conv_row_bf16dot_avx512bf16.cpp).
bool conv_row_bf16dot_fits(const CausalConvParams& p);
void conv_row_bf16dot(const CausalConvParams& p, int64_t b, int64_t c, bool next);
#endif

// The kernels of `isa`, or empty (null members) for the portable loops.
ConvImpl conv_impl(Isa isa);

}  // namespace linattn::detail::cpu
