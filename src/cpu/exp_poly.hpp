// The polynomial of fast_exp.hpp for the vector kernels, a template only: the instruction-set
// headers include it, and no inline function compiled for one set can stand in for another's.
#pragma once

namespace linattn::detail::cpu {

// The fast_exp polynomial on N vectors of the vector operations V (simd_avx2.hpp,
// simd_avx512.hpp), each step over all N before the next (N independent chains the out-of-order core overlaps):
// from x and n = round(x / ln2), p = e^r with r = x - n ln2. The caller clamps x, rounds n and
// scales p by 2^n in its instruction set's own way.
template <class V, int N>
inline void exp_reduced(const typename V::R (&x)[N], const typename V::R (&n)[N],
                        typename V::R (&p)[N]) {
  using R = typename V::R;
  R r[N];
  for (int i = 0; i < N; ++i)
    r[i] = V::fma(n[i], V::set1(2.12194440e-4f), V::fma(n[i], V::set1(-0.693359375f), x[i]));
  for (int i = 0; i < N; ++i)
    p[i] = V::fma(V::set1(1.9875691500e-4f), r[i], V::set1(1.3981999507e-3f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], r[i], V::set1(8.3334519073e-3f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], r[i], V::set1(4.1665795894e-2f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], r[i], V::set1(1.6666665459e-1f));
  for (int i = 0; i < N; ++i) p[i] = V::fma(p[i], r[i], V::set1(5.0000001201e-1f));
  for (int i = 0; i < N; ++i)
    p[i] = V::fma(V::mul(p[i], r[i]), r[i], V::add(r[i], V::set1(1.0f)));
}

}  // namespace linattn::detail::cpu
