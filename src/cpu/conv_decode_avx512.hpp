// conv_decode.hpp with AVX-512 (F, BW): sixteen channels per step, each (s0, s1, s2) triple
// interleaved in the state row taken apart and put back together with two-table permutes
// instead of the in-lane blends of the AVX2 kernel, whose shuffles and conversions, not memory,
// bound it on a 2-core AVX-512 Xeon (1.3-2.0 ns per channel from cache with float32, 2.8-3.7
// with bfloat16 activations and state).
//
// The 48 state values V[3c + j] = s_j[c] of 16 channels:
// - float32 state: three vectors v0, v1, v2. s_j is one permute over (v0, v1) and one masked
//   permute over v2 for the lanes past index 31; the new state (s1, s2, x) is V shifted left by
//   one value (valignd of v_k and v_k+1) with x permuted into every third lane.
// - 16-bit state: the values stay in their storage encoding, as two vectors: V[0..31] and
//   T = [V[32..47] | x (16 values, rounded to the state type once)]. Both new-state vectors are
//   one permute each over (V[0..31], T), and two permutes take s0, s1 and s2 apart; only the
//   operands of the arithmetic are widened to float.
// The (C, 1, 4) weights of 16 channels are transposed to tap-major the same way. The last
// fewer-than-16 channels run the same step with masked loads and stores.
//
// A template over the vector operations V (simd_avx512.hpp): include only from *_avx512.cpp and
// *_avx512bf16.cpp, which instantiate conv_decode_k4_avx512 and its bfloat16-instruction twin.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "cpu/conv_decode.hpp"
#include "cpu/simd_avx512.hpp"

// Internal linkage: the two including files are compiled for different instruction sets, so
// no copy of these functions may stand in for the other's.
namespace linattn::detail::cpu::decode512 {
namespace {

template <linattn_dtype T>
constexpr int64_t kBytes = T == LINATTN_FLOAT32 ? 4 : 2;

// 16 values of a 16-bit type as float.
template <linattn_dtype T>
inline __m512 widen(__m256i h) {
  if constexpr (T == LINATTN_FLOAT16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <typename I, int N, typename F>
inline __m512i table(F f) {
  alignas(64) I v[N];
  for (int i = 0; i < N; ++i) v[i] = static_cast<I>(f(i));
  return _mm512_load_si512(v);
}

// The permute indices and lane masks.
// Indices are lanes of the concatenated tables; 16-bit tables: 0..31 = V[0..31], then T.
struct Tables {
  __m512i s32[3];         // float32 state: s_j lane c <- V[3c + j] of (v0, v1), or v2 ...
  __mmask16 s32_hi[3];    // ... for these lanes
  __m512i x32[3];         // float32 state, new vector k: lane i <- x[(16k + i) / 3] ...
  __mmask16 x32_at[3];    // ... for the lanes holding x
  __m512i s16_01, s16_2;  // 16-bit state: [s0 | s1] and [s2 | -]
  __m512i n16_01, n16_2;  // 16-bit state: new V[0..31]; new V[32..47] (over T alone)
  __m512i w32[4];         // float32 weights: tap j lane c <- W[(4c + j) mod 32] of (w0, w1) or
                          // (w2, w3)
  __m512i w16_01, w16_23;  // 16-bit weights: [tap0 | tap1], [tap2 | tap3] over W[0..63]
};

Tables make_tables() {
  Tables t;
  for (int j = 0; j < 3; ++j) {
    t.s32[j] = table<int32_t, 16>([j](int c) { return 3 * c + j; });
    t.s32_hi[j] = 0;
    for (int c = 0; c < 16; ++c)
      if (3 * c + j >= 32) t.s32_hi[j] = static_cast<__mmask16>(t.s32_hi[j] | (1u << c));
    t.x32[j] = table<int32_t, 16>([j](int i) { return (16 * j + i) / 3; });
    t.x32_at[j] = 0;
    for (int i = 0; i < 16; ++i)
      if ((16 * j + i) % 3 == 2) t.x32_at[j] = static_cast<__mmask16>(t.x32_at[j] | (1u << i));
  }
  t.s16_01 = table<int16_t, 32>([](int i) { return 3 * (i % 16) + i / 16; });
  t.s16_2 = table<int16_t, 32>([](int i) { return 3 * (i % 16) + 2; });
  auto next = [](int g) { return g % 3 == 2 ? 48 + g / 3 : g + 1; };  // new V[g]
  t.n16_01 = table<int16_t, 32>(next);
  t.n16_2 = table<int16_t, 32>([&](int i) { return i < 16 ? next(32 + i) - 32 : 0; });
  for (int j = 0; j < 4; ++j)
    t.w32[j] = table<int32_t, 16>([j](int c) { return (4 * c + j) & 31; });
  t.w16_01 = table<int16_t, 32>([](int i) { return 4 * (i % 16) + i / 16; });
  t.w16_23 = table<int16_t, 32>([](int i) { return 4 * (i % 16) + 2 + i / 16; });
  return t;
}

inline __m256i lo(__m512i v) { return _mm512_castsi512_si256(v); }
inline __m256i hi(__m512i v) { return _mm512_extracti64x4_epi64(v, 1); }

// The first k of 32 lanes (none when k <= 0); 16 lanes: VecAvx512T::mask.
inline __mmask32 first32(int64_t k) {
  return k >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (k > 0 ? k : 0)) - 1u);
}

// Software prefetch kAhead channels ahead (the AVX2 kernel measured it on Zen 3).
constexpr int64_t kAhead = 128;
inline void prefetch(const void* p, int64_t bytes_ahead) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + bytes_ahead),
               _MM_HINT_T0);
}

template <class V>
inline __m512 silu(__m512 v) {
  __m512 a[1] = {v};
  silu_n<V, 1>(a);
  return a[0];
}

// The four weight taps (float) of 16 channels at wc (4 values each; r channels valid).
template <class V, linattn_dtype A>
[[gnu::always_inline]] inline void weight_taps(const Tables& t, const void* wc, int64_t r,
                                               __m512 (&tap)[4]) {
  if constexpr (A == LINATTN_FLOAT32) {
    const float* w = static_cast<const float*>(wc);
    __m512 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm512_maskz_loadu_ps(V::mask(4 * r - 16 * k), w + 16 * k);
    for (int j = 0; j < 4; ++j)
      tap[j] = _mm512_mask_blend_ps(0xff00, _mm512_permutex2var_ps(v[0], t.w32[j], v[1]),
                                    _mm512_permutex2var_ps(v[2], t.w32[j], v[3]));
  } else {
    const int16_t* w = static_cast<const int16_t*>(wc);
    const __m512i a = _mm512_maskz_loadu_epi16(first32(4 * r), w);
    const __m512i b = _mm512_maskz_loadu_epi16(first32(4 * r - 32), w + 32);
    const __m512i t01 = _mm512_permutex2var_epi16(a, t.w16_01, b);
    const __m512i t23 = _mm512_permutex2var_epi16(a, t.w16_23, b);
    tap[0] = widen<A>(lo(t01));
    tap[1] = widen<A>(hi(t01));
    tap[2] = widen<A>(lo(t23));
    tap[3] = widen<A>(hi(t23));
  }
}

// Channels [c, c + r) (r <= 16) of one row, x, weights, bias and state row pointers at channel
// c: writes the new state and returns the pre-activation outputs.
template <class V, linattn_dtype A, linattn_dtype S>
[[gnu::always_inline]] inline __m512 step(const Tables& t, const void* x, const void* w,
                                          const void* bias, const void* sp, void* sq, int64_t r) {
  const __mmask16 m = V::mask(r);
  const __m512 xv = V::loadm(x, A, m);
  __m512 tap[4];
  weight_taps<V, A>(t, w, r, tap);
  __m512 acc = bias != nullptr ? V::loadm(bias, A, m) : _mm512_setzero_ps();
  acc = _mm512_fmadd_ps(tap[3], xv, acc);
  if constexpr (S == LINATTN_FLOAT32) {
    const float* s = static_cast<const float*>(sp);
    float* q = static_cast<float*>(sq);
    __m512 v[3];
    const __mmask16 mv[3] = {V::mask(3 * r), V::mask(3 * r - 16), V::mask(3 * r - 32)};
    for (int k = 0; k < 3; ++k)
      v[k] = s != nullptr ? _mm512_maskz_loadu_ps(mv[k], s + 16 * k) : _mm512_setzero_ps();
    for (int j = 0; j < 3; ++j) {
      const __m512 sj = _mm512_mask_permutexvar_ps(
          _mm512_permutex2var_ps(v[0], t.s32[j], v[1]), t.s32_hi[j], t.s32[j], v[2]);
      acc = _mm512_fmadd_ps(tap[j], sj, acc);
    }
    // New state vector k: V shifted left by one value, x in every third lane.
    for (int k = 0; k < 3; ++k) {
      const __m512 up = _mm512_castsi512_ps(_mm512_alignr_epi32(
          _mm512_castps_si512(k < 2 ? v[k + 1] : v[2]), _mm512_castps_si512(v[k]), 1));
      _mm512_mask_storeu_ps(q + 16 * k, mv[k],
                            _mm512_mask_permutexvar_ps(up, t.x32_at[k], t.x32[k], xv));
    }
  } else {
    const int16_t* s = static_cast<const int16_t*>(sp);
    int16_t* q = static_cast<int16_t*>(sq);
    const __mmask32 m01 = first32(3 * r), m2 = first32(3 * r - 32);
    __m256i x16;
    if constexpr (A == S) x16 = _mm256_maskz_loadu_epi16(m, x);
    else x16 = V::to16(xv, S);
    const __m512i v01 = s != nullptr ? _mm512_maskz_loadu_epi16(m01, s) : _mm512_setzero_si512();
    const __m256i v2 = s != nullptr ? _mm256_maskz_loadu_epi16(static_cast<__mmask16>(m2), s + 32)
                                    : _mm256_setzero_si256();
    const __m512i tt = _mm512_inserti64x4(_mm512_castsi256_si512(v2), x16, 1);
    const __m512i s01 = _mm512_permutex2var_epi16(v01, t.s16_01, tt);
    const __m512i s2 = _mm512_permutex2var_epi16(v01, t.s16_2, tt);
    acc = _mm512_fmadd_ps(tap[0], widen<S>(lo(s01)), acc);
    acc = _mm512_fmadd_ps(tap[1], widen<S>(hi(s01)), acc);
    acc = _mm512_fmadd_ps(tap[2], widen<S>(lo(s2)), acc);
    _mm512_mask_storeu_epi16(q, m01, _mm512_permutex2var_epi16(v01, t.n16_01, tt));
    _mm256_mask_storeu_epi16(q + 32, static_cast<__mmask16>(m2),
                             lo(_mm512_permutexvar_epi16(t.n16_2, tt)));
  }
  return acc;
}

// Channels per pass: the state pass leaves the pre-activation outputs here, and a second pass
// applies the activation and stores them. The exp/divide chain of one step is longer than the
// rest of its work; inline, it held the scheduler and the steps hardly overlapped.
constexpr int64_t kPass = 256;

template <class V, linattn_dtype A, linattn_dtype S>
void decode_k4(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0, int64_t n) {
  constexpr int64_t ea = kBytes<A>, es = kBytes<S>;
  static const Tables t = make_tables();  // made once, on first use
  const char* w = static_cast<const char*>(p.w) + c0 * 4 * ea;
  const char* bs = p.bias != nullptr ? static_cast<const char*>(p.bias) + c0 * ea : nullptr;
  for (int64_t b = b0; b < b1; ++b) {
    const char* x = static_cast<const char*>(p.x) + (b * p.x_sb + c0) * ea;
    char* y = static_cast<char*>(p.y) + (b * p.y_sb + c0) * ea;
    const char* sp =
        p.past != nullptr ? static_cast<const char*>(p.past) + (b * p.past_sb + c0 * 3) * es
                          : nullptr;
    char* sq = static_cast<char*>(p.present) + (b * p.pres_sb + c0 * 3) * es;
    for (int64_t p0 = 0; p0 < n; p0 += kPass) {
      const int64_t nc = n - p0 < kPass ? n - p0 : kPass;
      alignas(64) float acc[kPass];
      // Whole steps with r = 16 (the masks fold to constants: plain loads and stores), then the
      // last fewer than 16 channels with masks.
      auto state_step = [&](int64_t c, int64_t r) {
        _mm512_store_ps(acc + (c - p0),
                        step<V, A, S>(t, x + c * ea, w + c * 4 * ea,
                                   bs != nullptr ? bs + c * ea : nullptr,
                                   sp != nullptr ? sp + c * 3 * es : nullptr, sq + c * 3 * es, r));
      };
      int64_t c = p0;
      for (; c + 16 <= p0 + nc; c += 16) {
        // One step spans 3 * 16 * es bytes of state: 1.5 cache lines (16-bit) or 3.
        const char* q = sq + c * 3 * es;
        prefetch(q, kAhead * 3 * es);
        prefetch(q + 64, kAhead * 3 * es);
        if (es > 2) prefetch(q + 128, kAhead * 3 * es);
        if (sp != nullptr && sp != sq) {
          const char* s = sp + c * 3 * es;
          prefetch(s, kAhead * 3 * es);
          prefetch(s + 64, kAhead * 3 * es);
          if (es > 2) prefetch(s + 128, kAhead * 3 * es);
        }
        prefetch(x + c * ea, kAhead * ea);
        state_step(c, 16);
      }
      if (c < p0 + nc) state_step(c, p0 + nc - c);
      for (int64_t i = 0; i < nc; i += 16) {
        const __m512 v = _mm512_load_ps(acc + i);
        V::storem(y + (p0 + i) * ea, A, p.silu ? silu<V>(v) : v, V::mask(nc - i));
      }
    }
  }
}

template <class V, linattn_dtype A>
void decode_k4_state(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0, int64_t n) {
  switch (p.present_dtype) {
    case LINATTN_FLOAT16: return decode_k4<V, A, LINATTN_FLOAT16>(p, b0, b1, c0, n);
    case LINATTN_BFLOAT16: return decode_k4<V, A, LINATTN_BFLOAT16>(p, b0, b1, c0, n);
    default: return decode_k4<V, A, LINATTN_FLOAT32>(p, b0, b1, c0, n);
  }
}

// Channels [c0, c0 + n) of batches [b0, b1) with the vector operations V.
template <class V>
void decode_k4_any(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0, int64_t n) {
  switch (p.act_dtype) {
    case LINATTN_FLOAT16: return decode_k4_state<V, LINATTN_FLOAT16>(p, b0, b1, c0, n);
    case LINATTN_BFLOAT16: return decode_k4_state<V, LINATTN_BFLOAT16>(p, b0, b1, c0, n);
    default: return decode_k4_state<V, LINATTN_FLOAT32>(p, b0, b1, c0, n);
  }
}

}  // namespace
}  // namespace linattn::detail::cpu::decode512
