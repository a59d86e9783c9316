// The polynomial of fast_exp.hpp for the vector kernels, a template only: the instruction-set
// headers include it, and no inline function compiled for one set can stand in for another's.
#pragma once

namespace linattn::detail::cpu {

// The fast_exp polynomial for the vector operations V (simd_avx2.hpp, simd_avx512.hpp): from x
// and n = round(x / ln2), p = e^r with r = x - n ln2. The caller clamps x, rounds n and scales
// p by 2^n in its instruction set's own way.
template <class V>
inline typename V::R exp_reduced(typename V::R x, typename V::R n) {
  using R = typename V::R;
  const R r = V::fma(n, V::set1(2.12194440e-4f), V::fma(n, V::set1(-0.693359375f), x));
  R p = V::fma(V::set1(1.9875691500e-4f), r, V::set1(1.3981999507e-3f));
  p = V::fma(p, r, V::set1(8.3334519073e-3f));
  p = V::fma(p, r, V::set1(4.1665795894e-2f));
  p = V::fma(p, r, V::set1(1.6666665459e-1f));
  p = V::fma(p, r, V::set1(5.0000001201e-1f));
  return V::fma(V::mul(p, r), r, V::add(r, V::set1(1.0f)));
}

// 2^f for |f| <= 1/2 on N vectors: a degree-6 polynomial fitted for relative error (7.9e-8
// at most, evaluated in float32).
template <class V, int N>
inline void exp2_fraction(const typename V::R (&f)[N], typename V::R (&p)[N]) {
  for (int i = 0; i < N; ++i) p[i] = V::fma(V::set1(1.5345805e-4f), f[i], V::set1(1.3399931e-3f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], f[i], V::set1(9.6184891e-3f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], f[i], V::set1(5.5503286e-2f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], f[i], V::set1(2.4022646e-1f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], f[i], V::set1(6.9314718e-1f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], f[i], V::set1(1.0f));
}

// SiLU, x / (1 + e^-x), of N vectors in place: e^-x as 2^t with t = -x log2 e (V::exp2_n), the
// reciprocal from V::rcp. The rounding of t costs about |x| 6e-8 relative in e^-x, which only
// matters where x is far negative and the output is tiny.
template <class V, int N>
inline void silu_n(typename V::R (&v)[N]) {
  typename V::R e[N];
  for (int i = 0; i < N; ++i) e[i] = V::mul(v[i], V::set1(-1.44269504088896341f));
  V::exp2_n(e);
  for (int i = 0; i < N; ++i) v[i] = V::mul(v[i], V::rcp(V::add(V::set1(1.f), e[i])));
}

}  // namespace linattn::detail::cpu
