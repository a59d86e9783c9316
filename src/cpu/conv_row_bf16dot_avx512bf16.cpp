// Channels-first causal conv rows of bfloat16 activations with k = 4 on AVX512_BF16: the taps
// go in pairs through vdpbf16ps (two bfloat16 products added to a float32 accumulator per
// lane), straight from the input row, instead of widening the row to float first and running
// four FMAs per output vector. Per 64 outputs: eight unaligned loads and eight dot products
// where the float path needed a widening pass and 16 FMAs; the outputs come out as even and
// odd lanes and are put back in order by one word permute after the bfloat16 rounding.
//
// Output l = w0 x[l-3] + w1 x[l-2] + w2 x[l-1] + w3 x[l] (+ bias): a 32-bit lane of the row at
// x + l - 3 holds the pair (x[l-3], x[l-2]), so one load at x + l0 - 3 feeds the even outputs
// l0 + 2i with taps (0, 1), one at x + l0 - 1 the same outputs with taps (2, 3), and loads at
// x + l0 - 2 and x + l0 the odd ones. Each product of two bfloat16 values is exact in float32
// and added with one rounding, as an FMA would; the instruction treats subnormal inputs and
// results as zero. The first 64 outputs (their window starts in the past state, which may be
// float32) and the last fewer-than-64 run through a float window.
// GCC 12 warns about its own AVX-512 intrinsic headers (_mm512_undefined_* operands).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/conv.hpp"
#include "cpu/simd_avx512.hpp"
#include "cpu/streaming.hpp"

namespace linattn::detail::cpu {
namespace {

using V = VecAvx512Bf16;
using R = V::R;
constexpr int64_t kStep = 64;  // outputs per step: four vectors
constexpr int64_t kS = 3;      // state columns (k - 1)

[[gnu::always_inline]] inline void silu4(R (&v)[4]) { silu_n<V, 4>(v); }

// Outputs [l0, l0 + n) (n <= kStep) through a float window G = P[l0 .. l0 + n + 3) of
// P = concat(past, x), zero padded; stored as bfloat16.
void window_step(const CausalConvParams& p, int64_t b, int64_t c, int64_t l0, int64_t n,
                 const float (&w)[4], float bias) {
  alignas(64) float G[kS + kStep + 16] = {};
  const int64_t xoff = b * p.x_sb + c * p.x_sc;
  const int64_t from_past = std::clamp<int64_t>(kS - l0, 0, kS);
  if (from_past > 0 && p.past != nullptr)
    V::load_row(p.past, b * p.past_sb + c * p.past_sc + l0, from_past, p.past_dtype, G);
  V::load_row(p.x, xoff + l0 + from_past - kS, kS + n - from_past, LINATTN_BFLOAT16,
              G + from_past);
  R acc[4];
  for (int u = 0; u < 4; ++u) {
    acc[u] = _mm512_set1_ps(bias);
    for (int j = 0; j < 4; ++j)
      acc[u] = _mm512_fmadd_ps(_mm512_set1_ps(w[j]), _mm512_loadu_ps(G + 16 * u + j), acc[u]);
  }
  if (p.silu) silu4(acc);
  alignas(64) float out[kStep];
  for (int u = 0; u < 4; ++u) _mm512_store_ps(out + 16 * u, acc[u]);
  V::store_row(p.y, b * p.y_sb + c * p.y_sc + l0, n, LINATTN_BFLOAT16, out);
}

inline uint32_t bf16_bits(float f) {  // w is read from bfloat16, so this is exact
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u >> 16;
}

}  // namespace

bool conv_row_bf16dot_fits(const CausalConvParams& p) {
  return p.act_dtype == LINATTN_BFLOAT16 && p.K == 4 && p.x_sl == 1 && p.y_sl == 1 &&
         p.L >= 2 * kStep;
}

void conv_row_bf16dot(const CausalConvParams& p, int64_t b, int64_t c, bool next) {
  const int64_t L = p.L;
  float w[4];
  V::load_row(p.w, c * p.w_sc, 4, LINATTN_BFLOAT16, w);  // w_sk = 1 for a (C, 1, k) weight
  float bias = 0.f;
  if (p.bias != nullptr) V::load_row(p.bias, c * p.bias_sc, 1, LINATTN_BFLOAT16, &bias);
  const __m512bh w01 = reinterpret_cast<__m512bh>(
      _mm512_set1_epi32(static_cast<int>(bf16_bits(w[0]) | bf16_bits(w[1]) << 16)));
  const __m512bh w23 = reinterpret_cast<__m512bh>(
      _mm512_set1_epi32(static_cast<int>(bf16_bits(w[2]) | bf16_bits(w[3]) << 16)));
  const R bv = _mm512_set1_ps(bias);
  const uint16_t* x = static_cast<const uint16_t*>(p.x) + b * p.x_sb + c * p.x_sc;
  uint16_t* y = static_cast<uint16_t*>(p.y) + b * p.y_sb + c * p.y_sc;
  const char* xn = next ? reinterpret_cast<const char*>(x + p.x_sc) : nullptr;
  const bool stream = p.B * p.C * L * 2 >= kStreamOutputBytes &&
                      reinterpret_cast<uintptr_t>(y) % 64 == 0;
  // Word permute that interleaves [e0..e15 | o0..o15] into e0 o0 e1 o1 ... (made once).
  static const __m512i perm = [] {
    alignas(64) int16_t order[32];
    for (int i = 0; i < 32; ++i) order[i] = static_cast<int16_t>(i % 2 ? 16 + i / 2 : i / 2);
    return _mm512_load_si512(order);
  }();

  window_step(p, b, c, 0, kStep, w, bias);
  int64_t l0 = kStep;
  for (; l0 + kStep <= L; l0 += kStep) {
    if (next)
      for (int64_t o = l0 * 2; o < (l0 + kStep) * 2; o += 64) __builtin_prefetch(xn + o);
    R acc[4];  // even and odd outputs of [l0, l0 + 32), then of [l0 + 32, l0 + 64)
    for (int h = 0; h < 2; ++h) {
      const uint16_t* xs = x + l0 + 32 * h;
      const auto ld = [&](int64_t d) {
        return reinterpret_cast<__m512bh>(_mm512_loadu_si512(xs + d));
      };
      acc[2 * h] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(bv, ld(-3), w01), ld(-1), w23);
      acc[2 * h + 1] = _mm512_dpbf16_ps(_mm512_dpbf16_ps(bv, ld(-2), w01), ld(0), w23);
    }
    if (p.silu) silu4(acc);
    for (int h = 0; h < 2; ++h) {
      const __m512i r = _mm512_permutexvar_epi16(
          perm, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(acc[2 * h + 1], acc[2 * h])));
      uint16_t* d = y + l0 + 32 * h;
      if (stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(d), r);
      else _mm512_storeu_si512(d, r);
    }
  }
  if (stream) _mm_sfence();
  if (l0 < L) window_step(p, b, c, l0, L - l0, w, bias);
  // present = the last three inputs (L >= 3), read before anything is written to it.
  float last[kS];
  V::load_row(p.x, b * p.x_sb + c * p.x_sc + L - kS, kS, LINATTN_BFLOAT16, last);
  V::store_row(p.present, b * p.pres_sb + c * p.pres_sc, kS, p.present_dtype, last);
}

}  // namespace linattn::detail::cpu
