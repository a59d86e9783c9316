// The fused recurrent LinearAttention kernel, written once over a vector-operations struct V
// (simd_portable.hpp, simd_avx2.hpp, simd_avx512.hpp) and instantiated in one file per
// instruction set. Include only from those files. Everything here is a template over V, so no
// inline function compiled for one instruction set can be picked by the linker for another.
//
// Work item: one sequence b, one kv head h and a range of value columns. Columns of the state
// are independent under every rule (SEMANTICS.md "Recurrence": each step mixes rows, never
// columns), so a head is cut into blocks of NB = 4 vectors of columns; a block (d_k x NB floats,
// 16 KiB with AVX2 at d_k = 128) stays in L1 while it runs through a chunk of tokens.
//
// Decay is folded out of the state. With L_t the running product of the decay factors (one per
// key row; all equal for per-head decay), the kernel keeps S~ = diag(L_t)^-1 S, so a token costs
// no separate scaling sweep:
//   r   = S^T k         = S~^T (L_t o k)                      (delta rules)
//   u   = beta (v - r)  (delta rules) or v
//   S~ <- S~ + (k / L_t) u^T                                  (S_t = diag(L_t) S~_t)
//   o   = scale S_t^T q = S~^T (scale L_t o q)
// When some L_t falls below kFoldBelow the state is folded back (S~ <- diag(L_t) S~, L_t <- 1)
// before the token, so k / L_t never overflows; the present state is diag(L_T) S~.
// Per token and block that is one read sweep (r) and one read-write sweep (update + readout):
// 2 loads, 1 store and 3 FMAs per state vector.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/params.hpp"

namespace linattn::detail::cpu {

constexpr int kRecurrentTokenChunk = 64;  // tokens prepared at once (k, q, v rows as float)
constexpr float kFoldBelow = 0x1p-30f;    // fold the decay into the state below this

template <class V>
struct RecurrentKernel {
  using R = typename V::R;
  static constexpr int W = V::W;
  static constexpr int NB = 4 * W;  // state columns per block

  struct Scratch {
    std::vector<float> S, kr, kt, qt, kq, fold, beta, v, o, lam, inv, e, row;
    std::vector<unsigned char> fold_at;
  };

  static void grow(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  }

  // Per token and block the kernel needs, from the state before the token's update (S~_old,
  // after any fold): r = S~_old^T kr (delta rules) and y_g = S~_old^T qt_g. Then
  //   u = beta (v - r) or v,   o_g = S~_new^T qt_g = y_g + (kt . qt_g) u = y_g + scale (k . q_g) u,
  // and the update S~ += kt u^T. The update of token t and the reads of token t+1 share one
  // sweep over the block (load, FMA, store, 2 FMAs per vector), so the state is swept once per
  // token and every accumulator chain advances once per row.

  // Reads only: acc_r = S~^T kr (if DELTA), acc_y = S~^T qt.
  template <bool DELTA>
  static void sweep_read(const float* __restrict S, int dk, const float* __restrict kr,
                         const float* __restrict qt, R* acc_r, R* acc_y) {
    R r0[4], r1[4], y0[4], y1[4];
    for (int c = 0; c < 4; ++c) r0[c] = r1[c] = y0[c] = y1[c] = V::zero();
    int i = 0;
    for (; i + 1 < dk; i += 2) {
      const float* __restrict Si = S + static_cast<int64_t>(i) * NB;
      const R q0 = V::set1(qt[i]), q1 = V::set1(qt[i + 1]);
      const R k0 = V::set1(DELTA ? kr[i] : 0.f), k1 = V::set1(DELTA ? kr[i + 1] : 0.f);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const R a = V::load(Si + c * W), b = V::load(Si + NB + c * W);
        y0[c] = V::fma(q0, a, y0[c]);
        y1[c] = V::fma(q1, b, y1[c]);
        if (DELTA) {
          r0[c] = V::fma(k0, a, r0[c]);
          r1[c] = V::fma(k1, b, r1[c]);
        }
      }
    }
    if (i < dk) {
      const float* __restrict Si = S + static_cast<int64_t>(i) * NB;
      const R q0 = V::set1(qt[i]), k0 = V::set1(DELTA ? kr[i] : 0.f);
      for (int c = 0; c < 4; ++c) {
        const R a = V::load(Si + c * W);
        y0[c] = V::fma(q0, a, y0[c]);
        if (DELTA) r0[c] = V::fma(k0, a, r0[c]);
      }
    }
    for (int c = 0; c < 4; ++c) {
      acc_y[c] = V::add(y0[c], y1[c]);
      if (DELTA) acc_r[c] = V::add(r0[c], r1[c]);
    }
  }

  // S~ += kt u^T, then the reads of the next token on the updated rows (when READ).
  template <bool DELTA, bool READ>
  static void sweep_update(float* __restrict S, int dk, const float* __restrict kt, const R* u,
                           const float* __restrict kr, const float* __restrict qt, R* acc_r,
                           R* acc_y) {
    R r[4], y[4];
    for (int c = 0; c < 4; ++c) r[c] = y[c] = V::zero();
    for (int i = 0; i < dk; ++i) {
      float* __restrict Si = S + static_cast<int64_t>(i) * NB;
      const R kb = V::set1(kt[i]);
      const R qb = V::set1(READ ? qt[i] : 0.f);
      const R rb = V::set1(READ && DELTA ? kr[i] : 0.f);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const R s = V::fma(kb, u[c], V::load(Si + c * W));
        V::store(Si + c * W, s);
        if (READ) {
          y[c] = V::fma(qb, s, y[c]);
          if (DELTA) r[c] = V::fma(rb, s, r[c]);
        }
      }
    }
    if (READ)
      for (int c = 0; c < 4; ++c) {
        acc_y[c] = y[c];
        if (DELTA) acc_r[c] = r[c];
      }
  }

  static void fold_rows(float* __restrict S, int dk, const float* __restrict f) {
    for (int i = 0; i < dk; ++i) {
      const R fi = V::set1(f[i]);
      float* Si = S + static_cast<int64_t>(i) * NB;
      for (int c = 0; c < 4; ++c) V::store(Si + c * W, V::mul(fi, V::load(Si + c * W)));
    }
  }

  // Per-token inputs of a chunk, prepared once per item (see run_item).
  struct Chunk {
    int n, dk, G;
    const float *kr, *kt, *qt, *kq, *fold, *beta, *v;
    const unsigned char* fold_at;
    int64_t v_st;  // floats between tokens in v (and in o per query head)
    float* o;      // o[(t * G + g) * v_st + column]
  };

  // All tokens of a chunk on one block (columns [col, col + NB) of v and o).
  template <bool DELTA>
  static void run_block(float* __restrict S, const Chunk& ch, int64_t col) {
    const int dk = ch.dk, G = ch.G;
    auto kr = [&](int t) { return ch.kr + static_cast<int64_t>(t) * dk; };
    auto kt = [&](int t) { return ch.kt + static_cast<int64_t>(t) * dk; };
    auto qt = [&](int t, int g) { return ch.qt + (static_cast<int64_t>(t) * G + g) * dk; };
    R r[4], y[4], u[4];
    if (ch.fold_at[0]) fold_rows(S, dk, ch.fold);
    sweep_read<DELTA>(S, dk, kr(0), qt(0, 0), r, y);
    for (int t = 0; t < ch.n; ++t) {
      const float* v = ch.v + t * ch.v_st + col;
      if (DELTA) {
        const R b = V::set1(ch.beta[t]);
        for (int c = 0; c < 4; ++c) u[c] = V::mul(b, V::sub(V::load(v + c * W), r[c]));
      } else {
        for (int c = 0; c < 4; ++c) u[c] = V::load(v + c * W);
      }
      // o_g = y_g + scale (k . q_g) u; heads beyond the first read S~_old in their own sweep.
      for (int g = 0; g < G; ++g) {
        R yg[4];
        if (g == 0) {
          for (int c = 0; c < 4; ++c) yg[c] = y[c];
        } else {
          sweep_read<false>(S, dk, nullptr, qt(t, g), nullptr, yg);
        }
        const R kq = V::set1(ch.kq[t * G + g]);
        float* o = ch.o + (static_cast<int64_t>(t) * G + g) * ch.v_st + col;
        for (int c = 0; c < 4; ++c) V::store(o + c * W, V::fma(kq, u[c], yg[c]));
      }
      const int tn = t + 1;
      if (tn < ch.n && !ch.fold_at[tn]) {
        sweep_update<DELTA, true>(S, dk, kt(t), u, kr(tn), qt(tn, 0), r, y);
      } else {
        sweep_update<DELTA, false>(S, dk, kt(t), u, nullptr, nullptr, nullptr, nullptr);
        if (tn < ch.n) {
          fold_rows(S, dk, ch.fold + static_cast<int64_t>(tn) * dk);
          sweep_read<DELTA>(S, dk, kr(tn), qt(tn, 0), r, y);
        }
      }
    }
  }

  static void prefetch_span(const void* base, int64_t off, int64_t n, linattn_dtype t) {
    const int64_t es = t == LINATTN_FLOAT32 ? 4 : t == LINATTN_FLOAT64 ? 8 : 2;
    const char* a = static_cast<const char*>(base) + off * es;
    for (int64_t x = 0; x < n * es; x += 64) __builtin_prefetch(a + x);
    __builtin_prefetch(a + n * es - 1);
  }

  static void prefetch_chunk(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
                             int32_t ncols, int64_t t_begin, int64_t t_end) {
    const linattn_dtype at = p.act_dtype;
    const int dk = p.dk, G = p.q_per_kv();
    for (int64_t tt = t_begin; tt < t_end; ++tt) {
      prefetch_span(p.k, b * p.k_sb + tt * p.k_st + static_cast<int64_t>(p.key_head(h)) * dk, dk, at);
      for (int g = 0; g < G; ++g)
        prefetch_span(p.q, b * p.q_sb + tt * p.q_st + static_cast<int64_t>(p.query_head(h, g)) * dk,
                      dk, at);
      prefetch_span(p.v, b * p.v_sb + tt * p.v_st + static_cast<int64_t>(h) * p.dv + c0, ncols, at);
      if (p.gated)
        prefetch_span(p.decay, b * p.g_sb + tt * p.g_st + (p.decay_per_key_dim ? h * dk : h),
                      p.decay_per_key_dim ? dk : 1, at);
      if (p.delta)
        prefetch_span(p.beta, b * p.beta_sb + tt * p.beta_st + (p.beta_shared ? 0 : h), 1, at);
    }
  }

  static float load1(const void* base, int64_t off, linattn_dtype t) {
    float x = 0.f;
    V::load_row(base, off, 1, t, &x);
    return x;
  }

  // Runs sequence b, kv head h, value columns [c0, c0 + ncols) over all T tokens.
  static void run_item(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
                       int32_t ncols, Scratch& sc) {
    const int dk = p.dk, dv = p.dv, G = p.q_per_kv();
    const int nblk = (ncols + NB - 1) / NB;
    const int64_t gw = static_cast<int64_t>(nblk) * NB;  // padded columns of the item
    const int Tc = kRecurrentTokenChunk;
    const linattn_dtype at = p.act_dtype;
    const int32_t hk = p.key_head(h);
    const bool delta = p.delta, gated = p.gated;

    grow(sc.S, nblk * static_cast<int64_t>(dk) * NB);
    grow(sc.kr, Tc * dk);
    grow(sc.kt, Tc * dk);
    grow(sc.qt, static_cast<int64_t>(Tc) * G * dk);
    grow(sc.kq, Tc * G);
    grow(sc.fold, Tc * dk);
    grow(sc.beta, Tc);
    grow(sc.v, Tc * gw);
    grow(sc.o, Tc * G * gw);
    grow(sc.lam, dk);
    grow(sc.inv, dk);
    grow(sc.e, dk);
    grow(sc.row, std::max<int64_t>(dk, gw));
    if (static_cast<int>(sc.fold_at.size()) < Tc) sc.fold_at.resize(Tc);
    float* __restrict S = sc.S.data();
    float* __restrict lam = sc.lam.data();
    float* __restrict inv = sc.inv.data();
    float* __restrict e = sc.e.data();
    float* __restrict row = sc.row.data();

    // State columns of this item into blocks (rows of NB floats, zero padded), read row by row
    // so memory sees one sequential stream per head. The item's whole slice is read before
    // anything is stored, so present may alias past.
    for (int i = 0; i < dk; ++i) {
      for (int blk = 0; blk < nblk; ++blk) {
        const int cnt = std::min(NB, ncols - blk * NB);
        float* Si = S + (static_cast<int64_t>(blk) * dk + i) * NB;
        if (p.past != nullptr)
          V::load_row(p.past, b * p.past_sb + h * p.past_sh + i * p.past_sk + c0 + blk * NB, cnt,
                      p.past_dtype, Si);
        for (int j = p.past != nullptr ? cnt : 0; j < NB; ++j) Si[j] = 0.f;
      }
    }
    for (int i = 0; i < dk; ++i) lam[i] = 1.f;

    for (int64_t t0 = 0; t0 < p.T; t0 += Tc) {
      const int n = static_cast<int>(std::min<int64_t>(Tc, p.T - t0));
      // The next chunk's rows are strided slices of (B, T, H*D) tensors, read from memory
      // once: prefetch them now so they arrive while this chunk computes.
      prefetch_chunk(p, b, h, c0, ncols, t0 + Tc, std::min<int64_t>(p.T, t0 + 2 * Tc));
      // Token inputs as float, decay folded into k and q (see the top of this file). Per-head
      // decay keeps one running product (lam[0]); per-key-dim decay one per row.
      const bool per_row = gated && p.decay_per_key_dim;
      for (int t = 0; t < n; ++t) {
        const int64_t tt = t0 + t;
        sc.fold_at[t] = 0;
        float ls = 1.f, is = 1.f;  // per-head: L_t and 1 / L_t
        if (gated) {
          const int64_t g_off = b * p.g_sb + tt * p.g_st;
          bool fold = false;
          if (per_row) {
            V::load_row(p.decay, g_off + static_cast<int64_t>(h) * dk, dk, at, e);
            int i = 0;
            for (; i + W <= dk; i += W) V::store(e + i, V::exp(V::load(e + i)));
            for (; i < dk; ++i) e[i] = std::exp(e[i]);
            for (int j = 0; j < dk; ++j) {
              lam[j] *= e[j];
              fold |= lam[j] < kFoldBelow;
            }
          } else {
            lam[0] *= std::exp(load1(p.decay, g_off + h, at));
            fold = !(lam[0] >= kFoldBelow);
          }
          if (fold) {
            sc.fold_at[t] = 1;
            float* f = sc.fold.data() + static_cast<int64_t>(t) * dk;
            const float l0 = lam[0];
            for (int j = 0; j < dk; ++j) {
              f[j] = per_row ? lam[j] : l0;
              lam[j] = 1.f;
            }
          }
          if (per_row) {
            for (int j = 0; j < dk; ++j) inv[j] = 1.f / lam[j];
          } else {
            ls = lam[0];
            is = 1.f / ls;
          }
        }
        float* __restrict k = row;
        V::load_row(p.k, b * p.k_sb + tt * p.k_st + static_cast<int64_t>(hk) * dk, dk, at, k);
        float* __restrict kt = sc.kt.data() + static_cast<int64_t>(t) * dk;
        float* __restrict kr = sc.kr.data() + static_cast<int64_t>(t) * dk;
        if (per_row) {
          for (int j = 0; j < dk; ++j) {
            kt[j] = k[j] * inv[j];
            kr[j] = k[j] * lam[j];
          }
        } else {
          for (int j = 0; j < dk; ++j) {
            kt[j] = k[j] * is;
            kr[j] = k[j] * ls;
          }
        }
        for (int g = 0; g < G; ++g) {
          float* __restrict q = sc.qt.data() + (static_cast<int64_t>(t) * G + g) * dk;
          V::load_row(p.q, b * p.q_sb + tt * p.q_st + static_cast<int64_t>(p.query_head(h, g)) * dk,
                      dk, at, q);
          float kq = 0.f;
          for (int j = 0; j < dk; ++j) kq += k[j] * q[j];
          sc.kq[t * G + g] = kq * p.scale;
          if (per_row) {
            for (int j = 0; j < dk; ++j) q[j] *= lam[j] * p.scale;
          } else {
            const float f = ls * p.scale;
            for (int j = 0; j < dk; ++j) q[j] *= f;
          }
        }
        if (delta)
          sc.beta[t] = load1(p.beta, b * p.beta_sb + tt * p.beta_st + (p.beta_shared ? 0 : h), at);
        float* vt = sc.v.data() + t * gw;
        V::load_row(p.v, b * p.v_sb + tt * p.v_st + static_cast<int64_t>(h) * dv + c0, ncols, at, vt);
        for (int64_t j = ncols; j < gw; ++j) vt[j] = 0.f;
      }
      // The chunk's tokens, block by block: each block stays in L1 for the whole chunk.
      const Chunk ch{n, dk, G, sc.kr.data(), sc.kt.data(), sc.qt.data(), sc.kq.data(),
                     sc.fold.data(), sc.beta.data(), sc.v.data(), sc.fold_at.data(), gw,
                     sc.o.data()};
      for (int blk = 0; blk < nblk; ++blk) {
        float* Sb = S + static_cast<int64_t>(blk) * dk * NB;
        if (delta) run_block<true>(Sb, ch, static_cast<int64_t>(blk) * NB);
        else run_block<false>(Sb, ch, static_cast<int64_t>(blk) * NB);
      }
      for (int t = 0; t < n; ++t)
        for (int g = 0; g < G; ++g)
          V::store_row(p.out,
                       b * p.o_sb + (t0 + t) * p.o_st +
                           static_cast<int64_t>(p.output_head(h, g)) * dv + c0,
                       ncols, at, sc.o.data() + (static_cast<int64_t>(t) * G + g) * gw);
    }

    // present = diag(L_T) S~, row by row.
    for (int i = 0; i < dk; ++i) {
      const float l = p.decay_per_key_dim ? lam[i] : lam[0];
      for (int blk = 0; blk < nblk; ++blk) {
        const int cnt = std::min(NB, ncols - blk * NB);
        const float* Si = S + (static_cast<int64_t>(blk) * dk + i) * NB;
        const float* src = Si;
        if (gated) {
          const R lv = V::set1(l);
          for (int c = 0; c < 4; ++c) V::store(row + c * W, V::mul(lv, V::load(Si + c * W)));
          src = row;
        }
        V::store_row(p.present, b * p.pres_sb + h * p.pres_sh + i * p.pres_sk + c0 + blk * NB,
                     cnt, p.present_dtype, src);
      }
    }
  }
};

}  // namespace linattn::detail::cpu
