// CausalConvWithState kernels written once over a vector-operations struct V (simd_avx2.hpp,
// simd_avx512.hpp) and instantiated per instruction set; include only from those files.
// causal_conv.cpp keeps the portable loops and calls these when the active instruction set has
// them. Formula (SEMANTICS.md): P = concat(past or zeros, x), y[l] = act(bias + sum_j w[j] P[l+j]),
// present = the last k-1 columns of P.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/params.hpp"
#include "core/view_check.hpp"

namespace linattn::detail::cpu {

template <class V>
struct ConvKernel {
  using R = typename V::R;
  static constexpr int W = V::W;

  static void grow(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  }

  static R silu(R x) {  // x / (1 + e^-x)
    const R one = V::set1(1.f);
    return V::div(x, V::add(one, V::exp(V::sub(V::zero(), x))));
  }

  // dst[j * ld + c] = src[c * m + j] for c < n, j < m (channel-major runs to tap-major rows).
  // The common widths get a compile-time m so the compiler can unroll and vectorise.
  template <int M>
  static void to_rows_m(const float* __restrict src, int64_t n, float* __restrict dst, int64_t ld) {
    for (int64_t c = 0; c < n; ++c)
      for (int j = 0; j < M; ++j) dst[j * ld + c] = src[c * M + j];
  }
  static void to_rows(const float* src, int64_t n, int64_t m, float* dst, int64_t ld) {
    if (m == 3) return to_rows_m<3>(src, n, dst, ld);
    if (m == 4) return to_rows_m<4>(src, n, dst, ld);
    for (int64_t c = 0; c < n; ++c)
      for (int64_t j = 0; j < m; ++j) dst[j * ld + c] = src[c * m + j];
  }
  // The inverse: dst[c * m + j] = src[row(j) * ld + c], rows taken from the ring at `first`.
  template <int M>
  static void from_ring_m(const float* __restrict ring, int64_t K, int64_t first, int64_t n,
                          int64_t ld, float* __restrict dst) {
    const float* rows[M];
    for (int j = 0; j < M; ++j) rows[j] = ring + ((first + j) % K) * ld;
    for (int64_t c = 0; c < n; ++c)
      for (int j = 0; j < M; ++j) dst[c * M + j] = rows[j][c];
  }
  static void from_ring(const float* ring, int64_t K, int64_t first, int64_t n, int64_t m,
                        int64_t ld, float* dst) {
    if (m == 3) return from_ring_m<3>(ring, K, first, n, ld, dst);
    for (int64_t c = 0; c < n; ++c)
      for (int64_t j = 0; j < m; ++j) dst[c * m + j] = ring[((first + j) % K) * ld + c];
  }

  struct Scratch {
    std::vector<float> P, w, ring, wt, bias, tmp;
  };

  // Channels first, time contiguous (x_sl = y_sl = 1): one channel row per call. The k-1 past
  // values and the L inputs form one float row P; each output vector is k FMAs over unaligned
  // windows of P, the activation is applied in registers and the result stored converted.
  // With `next` (the thread runs channel c + 1 next) that channel's input row is prefetched in
  // step with the outputs, so its load overlaps this row's arithmetic (the SiLU alone is about
  // a third of a row's time) instead of following it.
  static void channel_row(const CausalConvParams& p, int64_t b, int64_t c, bool next,
                          Scratch& sc) {
    const int64_t K = p.K, S = K - 1, L = p.L;
    const linattn_dtype at = p.act_dtype;
    grow(sc.P, S + L + W);
    grow(sc.w, K);
    grow(sc.tmp, W);
    float* P = sc.P.data();
    if (p.past != nullptr) {
      V::load_row(p.past, b * p.past_sb + c * p.past_sc, S, p.past_dtype, P);
    } else {
      for (int64_t j = 0; j < S; ++j) P[j] = 0.f;
    }
    V::load_row(p.x, b * p.x_sb + c * p.x_sc, L, at, P + S);
    V::load_row(p.w, c * p.w_sc, K, at, sc.w.data());  // w_sk = 1 for a (C, 1, k) weight
    const float bias = p.bias != nullptr ? load1(p.bias, c * p.bias_sc, at) : 0.f;
    R wv[8];
    const int kv = static_cast<int>(std::min<int64_t>(K, 8));
    for (int j = 0; j < kv; ++j) wv[j] = V::set1(sc.w[j]);
    const R bv = V::set1(bias);
    const int64_t yoff = b * p.y_sb + c * p.y_sc;
    const int64_t es = static_cast<int64_t>(dtype_bytes(at));
    const char* xn =
        next ? static_cast<const char*>(p.x) + (b * p.x_sb + (c + 1) * p.x_sc) * es : nullptr;
    auto out = [&](int64_t l) {
      if (next && ((l * es) & 63) == 0) __builtin_prefetch(xn + l * es);  // one per line
      R acc = bv;
      for (int j = 0; j < kv; ++j) acc = V::fma(wv[j], V::load(P + l + j), acc);
      for (int64_t j = kv; j < K; ++j) acc = V::fma(V::set1(sc.w[j]), V::load(P + l + j), acc);
      return p.silu ? silu(acc) : acc;
    };
    int64_t l = 0;
    if (at == LINATTN_FLOAT32) {
      float* y = static_cast<float*>(p.y) + yoff;
      for (; l + W <= L; l += W) V::store(y + l, out(l));
    } else {  // float16 or bfloat16 (the CPU backend takes no other activation type)
      char* y = static_cast<char*>(p.y) + yoff * es;
      for (; l + W <= L; l += W) V::store16(y + l * es, at, out(l));
    }
    if (l < L) {  // tail: P is padded by W floats, the extra lanes are dropped
      for (int64_t j = S + L; j < S + L + W; ++j) P[j] = 0.f;
      V::store(sc.tmp.data(), out(l));
      V::store_row(p.y, yoff + l, L - l, at, sc.tmp.data());
    }
    if (S > 0) V::store_row(p.present, b * p.pres_sb + c * p.pres_sc, S, p.present_dtype, P + L);
  }

  // Channel stride 1 (channels last, or any layout with L = 1: decode): channels c0 .. c0+n-1
  // of batch b, vectorised over channels. The k most recent input rows live in a ring of k
  // rows (tap-major), seeded from the state, which is read and written once.
  static void channel_block(const CausalConvParams& p, int64_t b, int64_t c0, int64_t n,
                            Scratch& sc) {
    const int64_t K = p.K, S = K - 1, L = p.L;
    const int64_t np = (n + W - 1) / W * W;  // padded
    const linattn_dtype at = p.act_dtype;
    grow(sc.wt, K * np);
    grow(sc.bias, np);
    grow(sc.ring, K * np);
    grow(sc.tmp, std::max(np, n * K));
    float* wt = sc.wt.data();
    float* ring = sc.ring.data();
    float* tmp = sc.tmp.data();
    // Weights tap-major. A (C, 1, k) weight with w_sc = k is one contiguous run per block.
    if (p.w_sc == K) {
      V::load_row(p.w, c0 * K, n * K, at, tmp);
      to_rows(tmp, n, K, wt, np);
    } else {
      for (int64_t c = 0; c < n; ++c) {
        V::load_row(p.w, (c0 + c) * p.w_sc, K, at, tmp);
        for (int64_t j = 0; j < K; ++j) wt[j * np + c] = tmp[j];
      }
    }
    for (int64_t j = 0; j < K; ++j)
      for (int64_t c = n; c < np; ++c) wt[j * np + c] = 0.f;
    if (p.bias != nullptr) {
      if (p.bias_sc == 1) {
        V::load_row(p.bias, c0, n, at, sc.bias.data());
      } else {
        for (int64_t c = 0; c < n; ++c) sc.bias[c] = load1(p.bias, (c0 + c) * p.bias_sc, at);
      }
      for (int64_t c = n; c < np; ++c) sc.bias[c] = 0.f;
    } else {
      for (int64_t c = 0; c < np; ++c) sc.bias[c] = 0.f;
    }
    // P[0 .. k-2] = past: each channel's k-1 values are contiguous; transpose into ring rows.
    if (S > 0) {
      if (p.past != nullptr && p.past_sc == S) {  // the block's state is one contiguous run
        V::load_row(p.past, b * p.past_sb + c0 * S, n * S, p.past_dtype, tmp);
        to_rows(tmp, n, S, ring, np);
      } else if (p.past != nullptr) {
        for (int64_t c = 0; c < n; ++c) {
          V::load_row(p.past, b * p.past_sb + (c0 + c) * p.past_sc, S, p.past_dtype, tmp);
          for (int64_t j = 0; j < S; ++j) ring[j * np + c] = tmp[j];
        }
      } else {
        for (int64_t j = 0; j < S; ++j)
          for (int64_t c = 0; c < n; ++c) ring[j * np + c] = 0.f;
      }
    }
    for (int64_t l = 0; l < L; ++l) {
      float* xr = ring + ((l + S) % K) * np;  // P[l + k - 1] = x[l]
      V::load_row(p.x, b * p.x_sb + c0 * p.x_sc + l * p.x_sl, n, at, xr);
      for (int64_t c = n; c < np; ++c) xr[c] = 0.f;
      const int64_t yoff = b * p.y_sb + c0 * p.y_sc + l * p.y_sl;
      float* yf = at == LINATTN_FLOAT32 ? static_cast<float*>(p.y) + yoff : tmp;
      for (int64_t c = 0; c < np; c += W) {
        R acc = V::load(sc.bias.data() + c);
        for (int64_t j = 0; j < K; ++j)
          acc = V::fma(V::load(wt + j * np + c), V::load(ring + ((l + j) % K) * np + c), acc);
        if (p.silu) acc = silu(acc);
        if (at == LINATTN_FLOAT32 && c + W > n) {  // last partial vector of a float32 row
          alignas(64) float t[W];
          V::store(t, acc);
          for (int64_t i = c; i < n; ++i) yf[i] = t[i - c];
        } else {
          V::store(yf + c, acc);
        }
      }
      if (at != LINATTN_FLOAT32) V::store_row(p.y, yoff, n, at, tmp);
    }
    // present = P[L .. L+k-2]
    if (S > 0) {
      if (p.pres_sc == S) {
        from_ring(ring, K, L, n, S, np, tmp);
        V::store_row(p.present, b * p.pres_sb + c0 * S, n * S, p.present_dtype, tmp);
      } else {
        for (int64_t c = 0; c < n; ++c) {
          for (int64_t j = 0; j < S; ++j) tmp[j] = ring[((L + j) % K) * np + c];
          V::store_row(p.present, b * p.pres_sb + (c0 + c) * p.pres_sc, S, p.present_dtype, tmp);
        }
      }
    }
  }

  static float load1(const void* base, int64_t off, linattn_dtype t) {
    float x = 0.f;
    V::load_row(base, off, 1, t, &x);
    return x;
  }
};

}  // namespace linattn::detail::cpu
