// AVX2 + FMA + F16C vector operations for the kernel templates (include only from *_avx2.cpp,
// which are compiled with those instruction sets). Everything here is a member of a struct that
// only this file defines, so no inline function is shared with code built for another set.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "cpu/exp_poly.hpp"
#include "linattn/linattn.h"

namespace linattn::detail::cpu {

struct VecAvx2 {
  using R = __m256;
  static constexpr int W = 8;
  static constexpr const char* kName = "avx2";
  static constexpr int kRegisters = 16;  // vector registers the kernels may plan for

  static R load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static R set1(float x) { return _mm256_set1_ps(x); }
  static R zero() { return _mm256_setzero_ps(); }
  static R add(R a, R b) { return _mm256_add_ps(a, b); }
  static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R div(R a, R b) { return _mm256_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }  // a * b + c
  // 1 / a within about 2 ulp (12-bit estimate, one Newton step) for |a| < 2^126; 0 beyond.
  static R rcp(R a) {
    const R r = _mm256_rcp_ps(a);
    return _mm256_fnmadd_ps(a, _mm256_mul_ps(r, r), _mm256_add_ps(r, r));
  }

  // e^x, the polynomial of fast_exp.hpp in vector form.
  static R exp(R x) {
    x = _mm256_min_ps(_mm256_max_ps(x, set1(-87.0f)), set1(88.0f));
    const R n = _mm256_round_ps(_mm256_mul_ps(x, set1(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(exp_reduced<VecAvx2>(x, n), _mm256_castsi256_ps(e));
  }

  // 2^t of N vectors in place (t clamped to [-126, 126]; for the SiLU, exp_poly.hpp).
  template <int N>
  static void exp2_n(R (&t)[N]) {
    R n[N], f[N], p[N];
    for (int i = 0; i < N; ++i) {
      t[i] = _mm256_min_ps(_mm256_max_ps(t[i], set1(-126.0f)), set1(126.0f));
      n[i] = _mm256_round_ps(t[i], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    }
    for (int i = 0; i < N; ++i) f[i] = _mm256_sub_ps(t[i], n[i]);
    exp2_fraction<VecAvx2, N>(f, p);
    for (int i = 0; i < N; ++i) {
      const __m256i e = _mm256_slli_epi32(
          _mm256_add_epi32(_mm256_cvtps_epi32(n[i]), _mm256_set1_epi32(127)), 23);
      t[i] = _mm256_mul_ps(p[i], _mm256_castsi256_ps(e));
    }
  }

  // 8 elements of storage type t at src as floats.
  static R load8(const void* src, linattn_dtype t) {
    switch (t) {
      case LINATTN_FLOAT16:
        return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(src)));
      case LINATTN_BFLOAT16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(src))), 16));
      default:
        return _mm256_loadu_ps(static_cast<const float*>(src));
    }
  }
  // W values of storage type t at src as floats (the name all instruction sets share).
  static R load16(const void* src, linattn_dtype t) { return load8(src, t); }
  // 8 floats as float16 or bfloat16 (t), packed.
  static __m128i to16(R v, linattn_dtype t) {
    if (t == LINATTN_FLOAT16) return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // bfloat16: round to nearest even on the bits; NaN keeps its top bits and is made quiet.
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    const __m256 isnan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    r = _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(nan), isnan));
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
  }
  // W values of v at dst as float16 or bfloat16 (t).
  static void store16(void* dst, linattn_dtype t, R v) {
    _mm_storeu_si128(static_cast<__m128i*>(dst), to16(v, t));
  }
  static void store8(void* dst, linattn_dtype t, R v) {
    if (t == LINATTN_FLOAT32) _mm256_storeu_ps(static_cast<float*>(dst), v);
    else _mm_storeu_si128(static_cast<__m128i*>(dst), to16(v, t));
  }

  static int64_t elem_bytes(linattn_dtype t) {
    return t == LINATTN_FLOAT32 ? 4 : t == LINATTN_FLOAT64 ? 8 : 2;
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
    int64_t i = 0;
    for (; i + W <= n; i += W) store(dst + i, load8(s + i * es, t));
    if (i < n) {  // tail through a zero-padded copy, so nothing past the row is read
      alignas(32) char tmp[32] = {};
      std::memcpy(tmp, s + i * es, static_cast<size_t>((n - i) * es));
      alignas(32) float f[W];
      store(f, load8(tmp, t));
      std::memcpy(dst + i, f, static_cast<size_t>(n - i) * 4);
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
    int64_t i = 0;
    for (; i + W <= n; i += W) store8(d + i * es, t, load(src + i));
    if (i < n) {
      alignas(32) float f[W] = {};
      std::memcpy(f, src + i, static_cast<size_t>(n - i) * 4);
      alignas(32) char tmp[32];
      store8(tmp, t, load(f));
      std::memcpy(d + i * es, tmp, static_cast<size_t>((n - i) * es));
    }
  }

  // Streaming (non-temporal) stores of one vector, float32 or 16-bit (t), to an address
  // aligned to its size: memory is written without the lines being read first, and they stay
  // out of the cache. stream_fence orders them before later stores.
  static void stream(float* dst, R v) { _mm256_stream_ps(dst, v); }
  static void stream16(void* dst, linattn_dtype t, R v) {
    _mm_stream_si128(static_cast<__m128i*>(dst), to16(v, t));
  }
  static void stream_fence() { _mm_sfence(); }
};

}  // namespace linattn::detail::cpu
