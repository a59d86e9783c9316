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
#include "cpu/exp_poly.hpp"
#include "cpu/streaming.hpp"

namespace linattn::detail::cpu {

template <class V>
struct ConvKernel {
  using R = typename V::R;
  static constexpr int W = V::W;

  static void grow(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
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

  // Outputs per group of the channels-first row: kU vectors whose activations run
  // interleaved. One vector's exp/divide chain is longer than the rest of its work; written
  // vector by vector, the chains waiting in the scheduler held it and vectors hardly overlapped.
  static constexpr int kU = 4;
  static constexpr int64_t kGroup = int64_t{kU} * W;

  static void silu_n(R (&v)[kU]) { cpu::silu_n<V, kU>(v); }

  // Channels first, time contiguous (x_sl = y_sl = 1): one channel row per call, kGroup
  // outputs at a time. Output l reads P[l .. l+k-1] of P = concat(past, x): float32 rows are
  // read in place (the group's window starts k-1 values before it; the first group and the
  // last partial one read their window copied into scratch), 16-bit rows are converted into a
  // float row P once. Outputs are stored from registers, streamed when the call's output is
  // large (streaming.hpp) and the row aligned.
  // With `next` (the thread runs channel c + 1 next) that channel's input row is prefetched in
  // step with the outputs, so its load overlaps this row's arithmetic.
  static void channel_row(const CausalConvParams& p, int64_t b, int64_t c, bool next,
                          Scratch& sc) {
    const int64_t K = p.K, S = K - 1, L = p.L;
    const linattn_dtype at = p.act_dtype;
    const int64_t es = static_cast<int64_t>(dtype_bytes(at));
    const bool f32 = at == LINATTN_FLOAT32;
    grow(sc.P, S + (f32 ? 0 : L) + kGroup);
    grow(sc.w, K);
    grow(sc.tmp, kGroup);
    float* P = sc.P.data();
    const int64_t xoff = b * p.x_sb + c * p.x_sc, yoff = b * p.y_sb + c * p.y_sc;
    const int64_t poff = b * p.past_sb + c * p.past_sc;
    V::load_row(p.w, c * p.w_sc, K, at, sc.w.data());  // w_sk = 1 for a (C, 1, k) weight
    const float bias = p.bias != nullptr ? load1(p.bias, c * p.bias_sc, at) : 0.f;
    R wv[8];
    const int kv = static_cast<int>(std::min<int64_t>(K, 8));
    for (int j = 0; j < kv; ++j) wv[j] = V::set1(sc.w[j]);
    const R bv = V::set1(bias);
    // dst[i] = P[i0 + i] for i < n.
    auto p_values = [&](int64_t i0, int64_t n, float* dst) {
      const int64_t from_past = std::clamp<int64_t>(S - i0, 0, n);
      if (from_past > 0) {
        if (p.past != nullptr) V::load_row(p.past, poff + i0, from_past, p.past_dtype, dst);
        else std::fill(dst, dst + from_past, 0.f);
      }
      V::load_row(p.x, xoff + i0 + from_past - S, n - from_past, at, dst + from_past);
    };
    const char* xn =
        next ? static_cast<const char*>(p.x) + (b * p.x_sb + (c + 1) * p.x_sc) * es : nullptr;
    char* y = static_cast<char*>(p.y) + yoff * es;
    const bool stream = p.B * p.C * L * es >= kStreamOutputBytes &&
                        reinterpret_cast<uintptr_t>(y) % (W * es) == 0;
    if (!f32) {  // the whole row, converted once, zero-padded for the last group
      p_values(0, S, P);
      const char* xr = static_cast<const char*>(p.x) + xoff * es;
      int64_t i = 0;  // whole vectors with the type fixed in the loop, then the tail
      if (at == LINATTN_BFLOAT16)
        for (; i + W <= L; i += W) V::store(P + S + i, V::load16(xr + i * 2, LINATTN_BFLOAT16));
      else
        for (; i + W <= L; i += W) V::store(P + S + i, V::load16(xr + i * 2, LINATTN_FLOAT16));
      V::load_row(p.x, xoff + i, L - i, at, P + S + i);
      std::fill(P + S + L, P + S + L + kGroup, 0.f);
    }
    auto group = [&](int64_t l0, int64_t n) {
      const float* src;
      if (!f32) {
        src = P + l0;
      } else if (l0 >= S && n == kGroup) {
        src = static_cast<const float*>(p.x) + xoff + l0 - S;
      } else {
        p_values(l0, S + n, P);
        std::fill(P + S + n, P + S + kGroup, 0.f);
        src = P;
      }
      if (next)
        for (int64_t o = l0 * es; o < (l0 + n) * es; o += 64) __builtin_prefetch(xn + o);
      R acc[kU];
      for (int u = 0; u < kU; ++u) acc[u] = bv;
      for (int j = 0; j < kv; ++j)
        for (int u = 0; u < kU; ++u) acc[u] = V::fma(wv[j], V::load(src + u * W + j), acc[u]);
      for (int64_t j = kv; j < K; ++j)
        for (int u = 0; u < kU; ++u)
          acc[u] = V::fma(V::set1(sc.w[j]), V::load(src + u * W + j), acc[u]);
      if (p.silu) silu_n(acc);
      if (n < kGroup) {
        for (int u = 0; u < kU; ++u) V::store(sc.tmp.data() + u * W, acc[u]);
        V::store_row(p.y, yoff + l0, n, at, sc.tmp.data());
      } else if (at == LINATTN_FLOAT32) {
        float* yf = reinterpret_cast<float*>(y) + l0;
        for (int u = 0; u < kU; ++u) {
          if (stream) V::stream(yf + u * W, acc[u]);
          else V::store(yf + u * W, acc[u]);
        }
      } else {
        for (int u = 0; u < kU; ++u) {
          if (stream) V::stream16(y + (l0 + u * W) * es, at, acc[u]);
          else V::store16(y + (l0 + u * W) * es, at, acc[u]);
        }
      }
    };
    int64_t l = 0;
    for (; l + kGroup <= L; l += kGroup) group(l, kGroup);
    if (l < L) group(l, L - l);
    if (stream) V::stream_fence();
    // present = P[L .. L+k-2], read whole before it is written (present may alias past).
    if (S > 0) {
      grow(sc.tmp, S);
      if (f32) p_values(L, S, sc.tmp.data());
      const float* last = f32 ? sc.tmp.data() : P + L;
      V::store_row(p.present, b * p.pres_sb + c * p.pres_sc, S, p.present_dtype, last);
    }
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
      // kU vectors of channels at a time, their SiLU interleaved (see channel_row).
      for (int64_t c = 0; c < np; c += kGroup) {
        const int nv = static_cast<int>(std::min<int64_t>(kU, (np - c) / W));
        R acc[kU];
        for (int u = 0; u < kU; ++u)
          acc[u] = u < nv ? V::load(sc.bias.data() + c + u * W) : V::zero();
        for (int64_t j = 0; j < K; ++j) {
          const float* wj = wt + j * np + c;
          const float* rj = ring + ((l + j) % K) * np + c;
          for (int u = 0; u < nv; ++u)
            acc[u] = V::fma(V::load(wj + u * W), V::load(rj + u * W), acc[u]);
        }
        if (p.silu) silu_n(acc);
        for (int u = 0; u < nv; ++u) {
          const int64_t cu = c + u * W;
          if (at == LINATTN_FLOAT32 && cu + W > n) {  // last partial vector of a float32 row
            alignas(64) float t[W];
            V::store(t, acc[u]);
            for (int64_t i = cu; i < n; ++i) yf[i] = t[i - cu];
          } else {
            V::store(yf + cu, acc[u]);
          }
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
