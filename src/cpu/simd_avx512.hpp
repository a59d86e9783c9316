// AVX-512 (F, BW, VL, DQ) + F16C vector operations for the kernel templates (include only from
// *_avx512.cpp and *_avx512bf16.cpp). Same contract as simd_avx2.hpp with 16 lanes; tails use
// masked loads/stores. VecAvx512Bf16 rounds to bfloat16 with the AVX512_BF16 instruction
// (compiled only into *_avx512bf16.cpp); VecAvx512 with integer operations, to the same values
// except that the instruction flushes subnormal inputs and results to zero.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/exp_poly.hpp"
#include "linattn/linattn.h"

namespace linattn::detail::cpu {

template <bool kBf16Cvt>
struct VecAvx512T {
  using R = __m512;
  static constexpr int W = 16;
  static constexpr const char* kName = kBf16Cvt ? "avx512bf16" : "avx512";
  static constexpr int kRegisters = 32;  // vector registers the kernels may plan for

  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R set1(float x) { return _mm512_set1_ps(x); }
  static R zero() { return _mm512_setzero_ps(); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  // 1 / a within about 1 ulp (14-bit estimate, one Newton step).
  static R rcp(R a) {
    const R r = _mm512_rcp14_ps(a);
    return _mm512_fnmadd_ps(a, _mm512_mul_ps(r, r), _mm512_add_ps(r, r));
  }

  // e^x, the polynomial of fast_exp.hpp; n = round(x log2 e) by adding 1.5 * 2^23 inside the
  // FMA (no fraction bits left), p 2^n by scalef.
  static R exp(R x) {
    x = _mm512_min_ps(_mm512_max_ps(x, set1(-87.0f)), set1(88.0f));
    const R magic = set1(12582912.0f);
    const R n = _mm512_sub_ps(_mm512_fmadd_ps(x, set1(1.44269504088896341f), magic), magic);
    return _mm512_scalef_ps(exp_reduced<VecAvx512T>(x, n), n);
  }

  // 2^t of N vectors in place (t clamped to [-127, 127]; for the SiLU, exp_poly.hpp).
  template <int N>
  static void exp2_n(R (&t)[N]) {
    R n[N], f[N], p[N];
    const R magic = set1(12582912.0f);  // 1.5 * 2^23: adding it rounds to an integer
    for (int i = 0; i < N; ++i) {
      t[i] = _mm512_min_ps(_mm512_max_ps(t[i], set1(-127.0f)), set1(127.0f));
      n[i] = _mm512_sub_ps(_mm512_add_ps(t[i], magic), magic);
    }
    for (int i = 0; i < N; ++i) f[i] = _mm512_sub_ps(t[i], n[i]);
    exp2_fraction<VecAvx512T, N>(f, p);
    for (int i = 0; i < N; ++i) t[i] = _mm512_scalef_ps(p[i], n[i]);
  }

  // Up to 16 elements (mask m) of storage type t at src as floats; unselected lanes are zero.
  static R loadm(const void* src, linattn_dtype t, __mmask16 m) {
    switch (t) {
      case LINATTN_FLOAT16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src));
      case LINATTN_BFLOAT16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src)), 16));
      default:
        return _mm512_maskz_loadu_ps(m, src);
    }
  }
  // W values of storage type t at src as floats.
  static R load16(const void* src, linattn_dtype t) { return loadm(src, t, mask(W)); }
  // 16 floats as float16 or bfloat16 (t), packed. bfloat16 rounds to nearest even on the
  // bits; NaN keeps its top bits and is made quiet.
  static __m256i to16(R v, linattn_dtype t) {
    if (t == LINATTN_FLOAT16) return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if constexpr (kBf16Cvt) return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __m512i nan = _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
    const __mmask16 isnan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    r = _mm512_mask_mov_epi32(r, isnan, nan);
    return _mm512_cvtepi32_epi16(r);
  }
  static void storem(void* dst, linattn_dtype t, R v, __mmask16 m) {
    if (t == LINATTN_FLOAT32) _mm512_mask_storeu_ps(dst, m, v);
    else _mm256_mask_storeu_epi16(dst, m, to16(v, t));
  }
  // W values of v at dst as float16 or bfloat16 (t).
  static void store16(void* dst, linattn_dtype t, R v) {
    _mm256_storeu_si256(static_cast<__m256i*>(dst), to16(v, t));
  }

  static int64_t elem_bytes(linattn_dtype t) {
    return t == LINATTN_FLOAT32 ? 4 : t == LINATTN_FLOAT64 ? 8 : 2;
  }
  // The first k lanes (none when k <= 0).
  static __mmask16 mask(int64_t k) {
    return k >= 16 ? static_cast<__mmask16>(0xffff)
                   : static_cast<__mmask16>((1u << (k > 0 ? k : 0)) - 1u);
  }

  static void load_row(const void* base, int64_t off, int64_t n, linattn_dtype t, float* dst) {
    if (n <= 0) return;
    if (t == LINATTN_FLOAT64) {
      const double* s = static_cast<const double*>(base) + off;
      for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
      return;
    }
    const int64_t es = elem_bytes(t);
    const char* s = static_cast<const char*>(base) + off * es;
    for (int64_t i = 0; i < n; i += W) {
      const __mmask16 m = mask(n - i);
      _mm512_mask_storeu_ps(dst + i, m, loadm(s + i * es, t, m));
    }
  }

  static void store_row(void* base, int64_t off, int64_t n, linattn_dtype t, const float* src) {
    if (n <= 0) return;
    if (t == LINATTN_FLOAT64) {
      double* d = static_cast<double*>(base) + off;
      for (int64_t i = 0; i < n; ++i) d[i] = src[i];
      return;
    }
    const int64_t es = elem_bytes(t);
    char* d = static_cast<char*>(base) + off * es;
    for (int64_t i = 0; i < n; i += W) {
      const __mmask16 m = mask(n - i);
      storem(d + i * es, t, _mm512_maskz_loadu_ps(m, src + i), m);
    }
  }

  // Streaming stores of one vector (see simd_avx2.hpp).
  static void stream(float* dst, R v) { _mm512_stream_ps(dst, v); }
  static void stream16(void* dst, linattn_dtype t, R v) {
    _mm256_stream_si256(static_cast<__m256i*>(dst), to16(v, t));
  }
  static void stream_fence() { _mm_sfence(); }
};

using VecAvx512 = VecAvx512T<false>;
using VecAvx512Bf16 = VecAvx512T<true>;

}  // namespace linattn::detail::cpu
