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
    std::vector<float> S, kr, kt, qt, fold, beta, v, o, lam, inv, e, row;
    std::vector<unsigned char> fold_at;
  };

  static void grow(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  }

  // Update + readout of NQ query heads in one read-write sweep: S~_i += kt_i u, o_g += qt_g,i S~_i.
  template <int NQ>
  static void update_read(float* __restrict S, int dk, const float* __restrict kt,
                          const float* __restrict qt, const R* u, float* __restrict o,
                          int64_t o_sg) {
    R acc[NQ][4];
    for (int g = 0; g < NQ; ++g)
      for (int c = 0; c < 4; ++c) acc[g][c] = V::zero();
    for (int i = 0; i < dk; ++i) {
      float* __restrict Si = S + static_cast<int64_t>(i) * NB;
      const R ki = V::set1(kt[i]);
      R q[NQ];
      for (int g = 0; g < NQ; ++g) q[g] = V::set1(qt[g * dk + i]);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const R s = V::fma(ki, u[c], V::load(Si + c * W));
        V::store(Si + c * W, s);
        for (int g = 0; g < NQ; ++g) acc[g][c] = V::fma(q[g], s, acc[g][c]);
      }
    }
    for (int g = 0; g < NQ; ++g)
      for (int c = 0; c < 4; ++c) V::store(o + g * o_sg + c * W, acc[g][c]);
  }

  // Readout only (query heads beyond the first two of a GQA group): o_g = S~^T qt_g.
  template <int NQ>
  static void read_only(const float* __restrict S, int dk, const float* __restrict qt,
                        float* __restrict o, int64_t o_sg) {
    R acc[NQ][4];
    for (int g = 0; g < NQ; ++g)
      for (int c = 0; c < 4; ++c) acc[g][c] = V::zero();
    for (int i = 0; i < dk; ++i) {
      const float* __restrict Si = S + static_cast<int64_t>(i) * NB;
      for (int g = 0; g < NQ; ++g) {
        const R q = V::set1(qt[g * dk + i]);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) acc[g][c] = V::fma(q, V::load(Si + c * W), acc[g][c]);
      }
    }
    for (int g = 0; g < NQ; ++g)
      for (int c = 0; c < 4; ++c) V::store(o + g * o_sg + c * W, acc[g][c]);
  }

  // One token on one block. `fold` (d_k factors) is non-null when the decay is folded first.
  static void step(float* __restrict S, int dk, int G, bool delta, const float* __restrict kr,
                   const float* __restrict kt, const float* __restrict qt,
                   const float* __restrict fold, float beta, const float* __restrict v,
                   float* __restrict o, int64_t o_sg) {
    if (fold != nullptr) {
      for (int i = 0; i < dk; ++i) {
        const R f = V::set1(fold[i]);
        float* Si = S + static_cast<int64_t>(i) * NB;
        for (int c = 0; c < 4; ++c) V::store(Si + c * W, V::mul(f, V::load(Si + c * W)));
      }
    }
    R u[4];
    if (delta) {
      // r = S~^T kr with two accumulator sets (even and odd rows) to cover the FMA latency.
      R a0[4], a1[4];
      for (int c = 0; c < 4; ++c) a0[c] = a1[c] = V::zero();
      int i = 0;
      for (; i + 1 < dk; i += 2) {
        const float* __restrict Si = S + static_cast<int64_t>(i) * NB;
        const R k0 = V::set1(kr[i]), k1 = V::set1(kr[i + 1]);
#pragma GCC unroll 4
        for (int c = 0; c < 4; ++c) {
          a0[c] = V::fma(k0, V::load(Si + c * W), a0[c]);
          a1[c] = V::fma(k1, V::load(Si + NB + c * W), a1[c]);
        }
      }
      if (i < dk) {
        const float* __restrict Si = S + static_cast<int64_t>(i) * NB;
        const R k0 = V::set1(kr[i]);
        for (int c = 0; c < 4; ++c) a0[c] = V::fma(k0, V::load(Si + c * W), a0[c]);
      }
      const R b = V::set1(beta);
      for (int c = 0; c < 4; ++c) u[c] = V::mul(b, V::sub(V::load(v + c * W), V::add(a0[c], a1[c])));
    } else {
      for (int c = 0; c < 4; ++c) u[c] = V::load(v + c * W);
    }
    if (G == 1) {
      update_read<1>(S, dk, kt, qt, u, o, o_sg);
      return;
    }
    update_read<2>(S, dk, kt, qt, u, o, o_sg);
    int g = 2;
    for (; g + 1 < G; g += 2) read_only<2>(S, dk, qt + g * dk, o + g * o_sg, o_sg);
    if (g < G) read_only<1>(S, dk, qt + g * dk, o + g * o_sg, o_sg);
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

    // State columns of this item, block by block (rows of NB floats, zero padded). The item's
    // whole slice is read before anything is stored, so present may alias past.
    for (int blk = 0; blk < nblk; ++blk) {
      const int cnt = std::min(NB, ncols - blk * NB);
      for (int i = 0; i < dk; ++i) {
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
      // Token inputs as float, decay folded into k and q (see the top of this file).
      for (int t = 0; t < n; ++t) {
        const int64_t tt = t0 + t;
        sc.fold_at[t] = 0;
        if (gated) {
          const int64_t g_off = b * p.g_sb + tt * p.g_st;
          bool fold = false;
          if (p.decay_per_key_dim) {
            V::load_row(p.decay, g_off + static_cast<int64_t>(h) * dk, dk, at, e);
            int i = 0;
            for (; i + W <= dk; i += W) V::store(e + i, V::exp(V::load(e + i)));
            for (; i < dk; ++i) e[i] = std::exp(e[i]);
            for (int j = 0; j < dk; ++j) {
              lam[j] *= e[j];
              fold |= lam[j] < kFoldBelow;
            }
          } else {
            const float eh = std::exp(load1(p.decay, g_off + h, at));
            for (int j = 0; j < dk; ++j) lam[j] *= eh;
            fold = lam[0] < kFoldBelow;
          }
          if (fold) {
            sc.fold_at[t] = 1;
            float* f = sc.fold.data() + static_cast<int64_t>(t) * dk;
            for (int j = 0; j < dk; ++j) {
              f[j] = lam[j];
              lam[j] = 1.f;
            }
          }
          for (int j = 0; j < dk; ++j) inv[j] = 1.f / lam[j];
        }
        V::load_row(p.k, b * p.k_sb + tt * p.k_st + static_cast<int64_t>(hk) * dk, dk, at, row);
        float* __restrict kt = sc.kt.data() + static_cast<int64_t>(t) * dk;
        float* __restrict kr = sc.kr.data() + static_cast<int64_t>(t) * dk;
        if (gated) {
          for (int j = 0; j < dk; ++j) {
            kt[j] = row[j] * inv[j];
            kr[j] = row[j] * lam[j];
          }
        } else {
          for (int j = 0; j < dk; ++j) kt[j] = kr[j] = row[j];
        }
        for (int g = 0; g < G; ++g) {
          float* __restrict q = sc.qt.data() + (static_cast<int64_t>(t) * G + g) * dk;
          V::load_row(p.q, b * p.q_sb + tt * p.q_st + static_cast<int64_t>(p.query_head(h, g)) * dk,
                      dk, at, q);
          if (gated) {
            for (int j = 0; j < dk; ++j) q[j] *= lam[j] * p.scale;
          } else {
            for (int j = 0; j < dk; ++j) q[j] *= p.scale;
          }
        }
        if (delta)
          sc.beta[t] = load1(p.beta, b * p.beta_sb + tt * p.beta_st + (p.beta_shared ? 0 : h), at);
        float* vt = sc.v.data() + t * gw;
        V::load_row(p.v, b * p.v_sb + tt * p.v_st + static_cast<int64_t>(h) * dv + c0, ncols, at, vt);
        for (int64_t j = ncols; j < gw; ++j) vt[j] = 0.f;
      }
      // The chunk's tokens, block by block: each block stays in L1 for the whole chunk.
      for (int blk = 0; blk < nblk; ++blk) {
        float* Sb = S + static_cast<int64_t>(blk) * dk * NB;
        for (int t = 0; t < n; ++t)
          step(Sb, dk, G, delta, sc.kr.data() + static_cast<int64_t>(t) * dk,
               sc.kt.data() + static_cast<int64_t>(t) * dk,
               sc.qt.data() + static_cast<int64_t>(t) * G * dk,
               sc.fold_at[t] ? sc.fold.data() + static_cast<int64_t>(t) * dk : nullptr,
               delta ? sc.beta[t] : 0.f, sc.v.data() + t * gw + blk * NB,
               sc.o.data() + static_cast<int64_t>(t) * G * gw + blk * NB, gw);
      }
      for (int t = 0; t < n; ++t)
        for (int g = 0; g < G; ++g)
          V::store_row(p.out,
                       b * p.o_sb + (t0 + t) * p.o_st +
                           static_cast<int64_t>(p.output_head(h, g)) * dv + c0,
                       ncols, at, sc.o.data() + (static_cast<int64_t>(t) * G + g) * gw);
    }

    // present = diag(L_T) S~
    for (int blk = 0; blk < nblk; ++blk) {
      const int cnt = std::min(NB, ncols - blk * NB);
      for (int i = 0; i < dk; ++i) {
        const float* Si = S + (static_cast<int64_t>(blk) * dk + i) * NB;
        const float* src = Si;
        if (gated) {
          const R l = V::set1(lam[i]);
          for (int c = 0; c < 4; ++c) V::store(row + c * W, V::mul(l, V::load(Si + c * W)));
          src = row;
        }
        V::store_row(p.present, b * p.pres_sb + h * p.pres_sh + i * p.pres_sk + c0 + blk * NB,
                     cnt, p.present_dtype, src);
      }
    }
  }
};

}  // namespace linattn::detail::cpu
