// conv_decode.hpp with AVX2 (AVX-512 machines run conv_decode_avx512.hpp: on a 2-core Xeon
// these in-lane shuffles, not memory, bounded the step). 8-channel groups keep the 3-value
// state interleave within 128-bit lanes. One template over
// the activation type A and the state type S (float32, float16, bfloat16 each): 16-bit values
// are widened to float on load and rounded once on store, the arithmetic is float32.
//
// Eight channels' state (24 values) is loaded as three vectors whose low lanes hold channels 0-3
// and high lanes channels 4-7, so that every lane holds four whole (s0, s1, s2) triples:
//   a = [s0 s1 s2 | s0'],  b = [s1' s2' | s0'' s1''],  c = [s2'' | s0''' s1''' s2''']
// Two blends and one in-lane permute recover each of s0, s1, s2 (and, in reverse, interleave the
// new state s1, s2, x). The (C, 1, 4) weights are loaded the same way and transposed 4 x 4 in
// each lane: this costs shuffles but no scratch buffer, so every work item is one long
// sequential run over x, y and the state rows, which is what the hardware prefetchers follow.

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "cpu/conv_decode.hpp"
#include "cpu/simd_avx2.hpp"

namespace linattn::detail::cpu {
namespace {

// Four values of type T at lo and four at hi (element pointers) as the two lanes of a vector.
template <linattn_dtype T>
inline __m256 load_lanes(const void* lo, const void* hi) {
  if constexpr (T == LINATTN_FLOAT32) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(static_cast<const float*>(lo))),
                                _mm_loadu_ps(static_cast<const float*>(hi)), 1);
  } else {
    const __m128i h = _mm_unpacklo_epi64(_mm_loadl_epi64(static_cast<const __m128i*>(lo)),
                                         _mm_loadl_epi64(static_cast<const __m128i*>(hi)));
    if constexpr (T == LINATTN_FLOAT16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}
template <linattn_dtype T>
inline void store_lanes(void* lo, void* hi, __m256 v) {
  if constexpr (T == LINATTN_FLOAT32) {
    _mm_storeu_ps(static_cast<float*>(lo), _mm256_castps256_ps128(v));
    _mm_storeu_ps(static_cast<float*>(hi), _mm256_extractf128_ps(v, 1));
  } else {
    const __m128i h = VecAvx2::to16(v, T);
    _mm_storel_epi64(static_cast<__m128i*>(lo), h);
    _mm_storel_epi64(static_cast<__m128i*>(hi), _mm_unpackhi_epi64(h, h));
  }
}

// [x0 y0 z0 x1] [y1 z1 x2 y2] [z2 x3 y3 z3] (per lane) -> x, y, z.
inline void deinterleave3(__m256 a, __m256 b, __m256 c, __m256& x, __m256& y, __m256& z) {
  // x: a0 a3 b2 c1;  blend gives [x0 x3 x2 x1]
  x = _mm256_permute_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x44), c, 0x22),
                        _MM_SHUFFLE(1, 2, 3, 0));
  // y: a1 b0 b3 c2;  blend gives [y1 y0 y3 y2]
  y = _mm256_permute_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x99), c, 0x44),
                        _MM_SHUFFLE(2, 3, 0, 1));
  // z: a2 b1 c0 c3;  blend gives [z2 z1 z0 z3]
  z = _mm256_permute_ps(_mm256_blend_ps(_mm256_blend_ps(a, b, 0x22), c, 0x99),
                        _MM_SHUFFLE(3, 0, 1, 2));
}

// The inverse of deinterleave3.
inline void interleave3(__m256 x, __m256 y, __m256 z, __m256& a, __m256& b, __m256& c) {
  const __m256 xp = _mm256_permute_ps(x, _MM_SHUFFLE(1, 2, 3, 0));  // [x0 x3 x2 x1]
  const __m256 yp = _mm256_permute_ps(y, _MM_SHUFFLE(2, 3, 0, 1));  // [y1 y0 y3 y2]
  const __m256 zp = _mm256_permute_ps(z, _MM_SHUFFLE(3, 0, 1, 2));  // [z2 z1 z0 z3]
  a = _mm256_blend_ps(_mm256_blend_ps(xp, yp, 0x22), zp, 0x44);    // [x0 y0 z0 x1]
  b = _mm256_blend_ps(_mm256_blend_ps(yp, zp, 0x22), xp, 0x44);    // [y1 z1 x2 y2]
  c = _mm256_blend_ps(_mm256_blend_ps(zp, xp, 0x22), yp, 0x44);    // [z2 x3 y3 z3]
}

// The activation trails the loads by kLag channels: its exp/divide chain then does not depend on
// the loads in flight, so it overlaps with them instead of holding the reorder window.
constexpr int64_t kLag = 64;

// Software prefetch kAhead channels ahead (1.5 KiB of float32 state): about 5% faster than the
// hardware prefetchers alone in two of three alternated rounds on a 2-core Zen 3 guest, equal in
// the third.
constexpr int64_t kAhead = 128;

// The cache lines of 8 channels' state (3 x 8 values of es bytes) kAhead channels past p.
// Integer arithmetic: the address may lie past the end of the row, which a prefetch tolerates.
inline void prefetch_state(const void* p, int64_t es) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p) + kAhead * 3 * es;
  _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
  if (es > 2) _mm_prefetch(reinterpret_cast<const char*>(a + 64), _MM_HINT_T0);
}
inline void prefetch_row(const void* p, int64_t es) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + kAhead * es),
               _MM_HINT_T0);
}

inline __m256 silu(__m256 v) {
  const __m256 e = VecAvx2::exp(_mm256_sub_ps(_mm256_setzero_ps(), v));
  return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.f), e));
}

inline float silu1(float v) { return v / (1.f + std::exp(-v)); }

// Bytes of one value of type T, and element i of an array of them at base as a byte pointer.
template <linattn_dtype T>
constexpr int64_t kBytes = T == LINATTN_FLOAT32 ? 4 : 2;
template <linattn_dtype T>
inline char* elem(void* base, int64_t i) {
  return static_cast<char*>(base) + i * kBytes<T>;
}
template <linattn_dtype T>
inline const char* elem(const void* base, int64_t i) {
  return static_cast<const char*>(base) + i * kBytes<T>;
}

// One value of type T as float, and back (the ragged tail of fewer than 8 channels).
template <linattn_dtype T>
inline float get1(const void* base, int64_t i) {
  float f;
  VecAvx2::load_row(base, i, 1, T, &f);
  return f;
}
template <linattn_dtype T>
inline void put1(void* base, int64_t i, float f) {
  VecAvx2::store_row(base, i, 1, T, &f);
}

template <linattn_dtype A, linattn_dtype S>
void decode_k4(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0, int64_t n) {
  constexpr int64_t ea = kBytes<A>, es = kBytes<S>;
  const void* w = elem<A>(p.w, c0 * 4);
  const void* bs = p.bias != nullptr ? elem<A>(p.bias, c0) : nullptr;
  const int64_t nv = n / 8 * 8;
  // The pre-activation values of the last kLag channels wait here for the trailing
  // activation; each output is stored (rounded, when 16-bit) once.
  alignas(32) float lag[kLag];
  for (int64_t b = b0; b < b1; ++b) {
    const void* x = elem<A>(p.x, b * p.x_sb + c0);
    void* y = elem<A>(p.y, b * p.y_sb + c0);
    const void* sp = p.past != nullptr ? elem<S>(p.past, b * p.past_sb + c0 * 3) : nullptr;
    void* sq = elem<S>(p.present, b * p.pres_sb + c0 * 3);
    for (int64_t c = 0; c < nv; c += 8) {
      __m256 s0, s1, s2;
      prefetch_state(elem<S>(sq, c * 3), es);
      if (sp != nullptr && sp != sq) prefetch_state(elem<S>(sp, c * 3), es);
      prefetch_row(elem<A>(x, c), ea);
      if (sp != nullptr) {  // all of it is read before anything is stored (present may alias)
        const char* s = elem<S>(sp, c * 3);
        deinterleave3(load_lanes<S>(s, s + 12 * es), load_lanes<S>(s + 4 * es, s + 16 * es),
                      load_lanes<S>(s + 8 * es, s + 20 * es), s0, s1, s2);
      } else {
        s0 = s1 = s2 = _mm256_setzero_ps();
      }
      const __m256 xv = VecAvx2::load8(elem<A>(x, c), A);
      // Lane h of a_i holds channel 4h + i's four taps; unpack + shuffle gives tap-major rows.
      const char* wc = elem<A>(w, c * 4);
      const __m256 a0 = load_lanes<A>(wc, wc + 16 * ea), a1 = load_lanes<A>(wc + 4 * ea, wc + 20 * ea);
      const __m256 a2 = load_lanes<A>(wc + 8 * ea, wc + 24 * ea);
      const __m256 a3 = load_lanes<A>(wc + 12 * ea, wc + 28 * ea);
      const __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpacklo_ps(a2, a3);
      const __m256 t2 = _mm256_unpackhi_ps(a0, a1), t3 = _mm256_unpackhi_ps(a2, a3);
      __m256 acc = bs != nullptr ? VecAvx2::load8(elem<A>(bs, c), A) : _mm256_setzero_ps();
      acc = _mm256_fmadd_ps(_mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)), s0, acc);
      acc = _mm256_fmadd_ps(_mm256_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)), s1, acc);
      acc = _mm256_fmadd_ps(_mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(1, 0, 1, 0)), s2, acc);
      acc = _mm256_fmadd_ps(_mm256_shuffle_ps(t2, t3, _MM_SHUFFLE(3, 2, 3, 2)), xv, acc);
      if (p.silu) {
        float* slot = lag + c % kLag;  // holds channel c - kLag's value once c >= kLag
        if (c >= kLag) VecAvx2::store8(elem<A>(y, c - kLag), A, silu(_mm256_load_ps(slot)));
        _mm256_store_ps(slot, acc);
      } else {
        VecAvx2::store8(elem<A>(y, c), A, acc);
      }
      __m256 a, bv, cv;
      interleave3(s1, s2, xv, a, bv, cv);
      char* q = elem<S>(sq, c * 3);
      store_lanes<S>(q, q + 12 * es, a);
      store_lanes<S>(q + 4 * es, q + 16 * es, bv);
      store_lanes<S>(q + 8 * es, q + 20 * es, cv);
    }
    if (p.silu)
      for (int64_t c = std::max<int64_t>(0, nv - kLag); c < nv; c += 8)
        VecAvx2::store8(elem<A>(y, c), A, silu(_mm256_load_ps(lag + c % kLag)));
    for (int64_t c = nv; c < n; ++c) {  // fewer than 8 channels left
      float s[3] = {0.f, 0.f, 0.f};
      if (sp != nullptr)
        for (int j = 0; j < 3; ++j) s[j] = get1<S>(sp, c * 3 + j);
      const float xc = get1<A>(x, c);
      float acc = bs != nullptr ? get1<A>(bs, c) : 0.f;
      for (int j = 0; j < 3; ++j) acc += get1<A>(w, c * 4 + j) * s[j];
      acc += get1<A>(w, c * 4 + 3) * xc;
      put1<A>(y, c, p.silu ? silu1(acc) : acc);
      put1<S>(sq, c * 3, s[1]);
      put1<S>(sq, c * 3 + 1, s[2]);
      put1<S>(sq, c * 3 + 2, xc);
    }
  }
}

template <linattn_dtype A>
void decode_k4_state(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0, int64_t n) {
  switch (p.present_dtype) {
    case LINATTN_FLOAT16: return decode_k4<A, LINATTN_FLOAT16>(p, b0, b1, c0, n);
    case LINATTN_BFLOAT16: return decode_k4<A, LINATTN_BFLOAT16>(p, b0, b1, c0, n);
    default: return decode_k4<A, LINATTN_FLOAT32>(p, b0, b1, c0, n);
  }
}

}  // namespace

void conv_decode_k4_avx2(const CausalConvParams& p, int64_t b0, int64_t b1, int64_t c0,
                         int64_t n) {
  switch (p.act_dtype) {
    case LINATTN_FLOAT16: return decode_k4_state<LINATTN_FLOAT16>(p, b0, b1, c0, n);
    case LINATTN_BFLOAT16: return decode_k4_state<LINATTN_BFLOAT16>(p, b0, b1, c0, n);
    default: return decode_k4_state<LINATTN_FLOAT32>(p, b0, b1, c0, n);
  }
}

}  // namespace linattn::detail::cpu
