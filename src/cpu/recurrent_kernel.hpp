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
// before the token, so k / L_t never overflows; the present state is diag(L_T) S~. The state
// sweeps, two tokens at a time, are in recurrent_sweep.hpp.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/params.hpp"
#include "core/view_check.hpp"
#include "cpu/recurrent.hpp"
#include "cpu/recurrent_sweep.hpp"

namespace linattn::detail::cpu {

constexpr int kRecurrentTokenChunk = 64;  // tokens prepared at once (k, q, v rows as float)
constexpr float kFoldBelow = 0x1p-30f;    // fold the decay into the state below this

template <class V>
struct RecurrentKernel {
  using Sw = RecurrentSweeps<V>;
  using R = typename V::R;
  using Chunk = typename Sw::Chunk;
  static constexpr int W = V::W;
  static constexpr int NB = Sw::NB;  // state columns per block (4 vectors per row)

  // A chunk's input rows as float: k, q (G heads per token), v (zero padded to whole blocks),
  // beta and per-head decay.
  struct Rows {
    std::vector<float> k, q, v, beta, g;
  };

  struct Scratch {
    std::vector<float> S, kr, kt, kq, kk, kqn, fold, o, lam, inv, e, row;
    std::vector<unsigned char> fold_at;
    Rows in;  // the chunk's input rows
  };

  static void grow(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  }

  static void prefetch_span(const void* base, int64_t off, int64_t n, linattn_dtype t) {
    const int64_t es = static_cast<int64_t>(dtype_bytes(t));
    const char* a = static_cast<const char*>(base) + off * es;
    for (int64_t x = 0; x < n * es; x += 64) __builtin_prefetch(a + x, 0, 1);
    __builtin_prefetch(a + n * es - 1, 0, 1);
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

  // The rows of the n tokens from t0 into r (grown by run_item), copied back to back so that
  // their cache misses overlap (with the arithmetic of each token between one token's rows and
  // the next, they did not).
  static void gather(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
                     int32_t ncols, int64_t gw, int64_t t0, int n, Rows& r) {
    const linattn_dtype at = p.act_dtype;
    const int dk = p.dk, G = p.q_per_kv();
    const int64_t hk = p.key_head(h);
    const bool per_head_decay = p.gated && !p.decay_per_key_dim;
    for (int t = 0; t < n; ++t) {
      const int64_t tt = t0 + t;
      V::load_row(p.k, b * p.k_sb + tt * p.k_st + hk * dk, dk, at, r.k.data() + int64_t{t} * dk);
      for (int g = 0; g < G; ++g)
        V::load_row(p.q, b * p.q_sb + tt * p.q_st + static_cast<int64_t>(p.query_head(h, g)) * dk,
                    dk, at, r.q.data() + (int64_t{t} * G + g) * dk);
      float* vt = r.v.data() + t * gw;
      V::load_row(p.v, b * p.v_sb + tt * p.v_st + static_cast<int64_t>(h) * p.dv + c0, ncols, at, vt);
      for (int64_t j = ncols; j < gw; ++j) vt[j] = 0.f;
      if (p.delta)
        r.beta[t] = load1(p.beta, b * p.beta_sb + tt * p.beta_st + (p.beta_shared ? 0 : h), at);
      if (per_head_decay) r.g[t] = load1(p.decay, b * p.g_sb + tt * p.g_st + h, at);
    }
  }

  static float load1(const void* base, int64_t off, linattn_dtype t) {
    float x = 0.f;
    V::load_row(base, off, 1, t, &x);
    return x;
  }

  // The per-token inputs of tokens [t0, t0 + n) from their rows: decay folded into k and q
  // (see the top of this file; per-head decay keeps one running product, lam[0], per-key-dim
  // decay one per row), folds, scale (k . q) and the pair scalars.
  static void prepare(const LinearAttentionParams& p, int64_t b, int32_t h, int64_t t0, int n,
                      Rows& in, Scratch& sc) {
    const int dk = p.dk, G = p.q_per_kv();
    const bool gated = p.gated, per_row = gated && p.decay_per_key_dim;
    float* __restrict lam = sc.lam.data();
    float* __restrict inv = sc.inv.data();
    float* __restrict e = sc.e.data();
    for (int t = 0; t < n; ++t) {
      sc.fold_at[t] = 0;
      float ls = 1.f, is = 1.f;  // per-head: L_t and 1 / L_t
      if (gated) {
        bool fold = false;
        if (per_row) {
          V::load_row(p.decay, b * p.g_sb + (t0 + t) * p.g_st + static_cast<int64_t>(h) * dk,
                      dk, p.act_dtype, e);
          int i = 0;
          for (; i + W <= dk; i += W) V::store(e + i, V::exp(V::load(e + i)));
          for (; i < dk; ++i) e[i] = std::exp(e[i]);
          for (int j = 0; j < dk; ++j) {
            lam[j] *= e[j];
            fold |= lam[j] < kFoldBelow;
          }
        } else {
          lam[0] *= std::exp(in.g[t]);
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
      const float* __restrict k = in.k.data() + static_cast<int64_t>(t) * dk;
      float* __restrict kt = sc.kt.data() + static_cast<int64_t>(t) * dk;
      float* __restrict kr = sc.kr.data() + static_cast<int64_t>(t) * dk;
      for (int g = 0; g < G; ++g) {
        float* __restrict q = in.q.data() + (static_cast<int64_t>(t) * G + g) * dk;
        sc.kq[t * G + g] = Sw::dot(k, q, dk) * p.scale;
        if (per_row) {
          for (int j = 0; j < dk; ++j) q[j] *= lam[j] * p.scale;
        } else {
          const float f = ls * p.scale;
          for (int j = 0; j < dk; ++j) q[j] *= f;
        }
      }
      if (per_row) {
        for (int j = 0; j < dk; ++j) {
          kr[j] = k[j] * lam[j];
          kt[j] = k[j] * inv[j];
        }
      } else {
        for (int j = 0; j < dk; ++j) {
          kr[j] = k[j] * ls;
          kt[j] = k[j] * is;
        }
      }
      if (t > 0) {  // the pair scalars of token t - 1 (unused when token t folds)
        const float* kp = kt - dk;
        sc.kk[t - 1] = Sw::dot(kp, kr, dk);
        sc.kqn[t - 1] = Sw::dot(kp, in.q.data() + static_cast<int64_t>(t) * G * dk, dk);
      }
    }
  }

  // store_row with streaming stores (V::stream): rows of whole vectors of float32, float16 or
  // bfloat16 on a vector-aligned address; any other row takes V::store_row.
  static void stream_row(void* base, int64_t off, int64_t n, linattn_dtype t, const float* src) {
    const int64_t es = static_cast<int64_t>(dtype_bytes(t));
    char* d = static_cast<char*>(base) + off * es;
    if (t == LINATTN_FLOAT64 || n % W != 0 || reinterpret_cast<uintptr_t>(d) % (W * es) != 0) {
      V::store_row(base, off, n, t, src);
      return;
    }
    for (int64_t i = 0; i < n; i += W) {
      if (t == LINATTN_FLOAT32) V::stream(reinterpret_cast<float*>(d) + i, V::load(src + i));
      else V::stream16(d + i * es, t, V::load(src + i));
    }
  }

  // One output row of item it (its ncols columns at element offset off), streamed when the
  // call streams its outputs; the caller fences once after its last row.
  static void out_row(const RecurrentItem& it, int64_t off, const float* src) {
    if (it.stream_out) stream_row(it.p->out, off, it.ncols, it.p->act_dtype, src);
    else V::store_row(it.p->out, off, it.ncols, it.p->act_dtype, src);
  }

  // A cursor over item it's past state (it.p->past set), a share of it per step of `steps`.
  static typename Sw::Ahead ahead_of(const RecurrentItem& it, int64_t steps) {
    const LinearAttentionParams& q = *it.p;
    const int64_t es = static_cast<int64_t>(dtype_bytes(q.past_dtype));
    typename Sw::Ahead a;
    a.row = static_cast<const char*>(q.past) + (it.b * q.past_sb + it.h * q.past_sh + it.c0) * es;
    a.row_bytes = q.past_sk * es;
    a.len = it.ncols * es;
    a.rows_left = q.dk - 1;
    const int64_t lines = q.dk * ((a.len + 63) / 64);
    a.per_step = static_cast<int>(std::max<int64_t>(1, (lines + steps - 1) / steps));
    return a;
  }

  // Whether item it's one-token step runs straight on the caller's state rows (run_decode):
  // past and present of one type with whole blocks of columns and one query head per kv head. The
  // general path copies the rows into blocks and back, which cost a decode step about half its
  // time from cache (the sweeps themselves are two passes over the state).
  static bool decode_direct(const RecurrentItem& it) {
    const LinearAttentionParams& p = *it.p;
    return p.T == 1 && p.q_per_kv() == 1 && p.past != nullptr &&
           p.past_dtype == p.present_dtype && p.past_dtype != LINATTN_FLOAT64 &&
           it.ncols % NB == 0;
  }

  // The blocks of run_decode on state rows of type T, leaving the outputs in sc.o.
  template <linattn_dtype T>
  static void decode_blocks(const RecurrentItem& it, const RecurrentItem* next, Scratch& sc) {
    const LinearAttentionParams& p = *it.p;
    const int dk = p.dk, nblk = it.ncols / NB;
    constexpr int64_t es = T == LINATTN_FLOAT32 ? 4 : 2;
    const char* past = static_cast<const char*>(p.past) +
                       (it.b * p.past_sb + it.h * p.past_sh + it.c0) * es;
    char* present = static_cast<char*>(p.present) +
                    (it.b * p.pres_sb + it.h * p.pres_sh + it.c0) * es;
    typename Sw::Ahead ahead;
    const bool fetch_next = next != nullptr && next->p->past != nullptr;
    if (fetch_next) ahead = ahead_of(*next, int64_t{nblk} * dk);
    const R kq = V::set1(sc.kq[0]), beta = V::set1(p.delta ? sc.in.beta[0] : 1.f);
    for (int blk = 0; blk < nblk; ++blk) {
      const int64_t col = int64_t{blk} * NB;
      R y[4], r[4], u[4];
      if (p.delta)
        Sw::template rows_read<true, T>(past + col * es, p.past_sk, dk, sc.kr.data(),
                                        sc.in.q.data(), y, r, fetch_next ? &ahead : nullptr);
      else
        Sw::template rows_read<false, T>(past + col * es, p.past_sk, dk, sc.kr.data(),
                                         sc.in.q.data(), y, r, fetch_next ? &ahead : nullptr);
      const float* v = sc.in.v.data() + col;
      for (int c = 0; c < 4; ++c) {
        u[c] = p.delta ? V::mul(beta, V::sub(V::load(v + c * W), r[c])) : V::load(v + c * W);
        V::store(sc.o.data() + col + c * W, V::fma(kq, u[c], y[c]));  // o = y + scale (k.q) u
      }
      Sw::template rows_update<T>(past + col * es, p.past_sk, present + col * es, p.pres_sk, dk,
                                  sc.kt.data(), u, sc.lam.data(), p.gated,
                                  p.gated && p.decay_per_key_dim);
    }
  }

  // One token on the caller's state: per block, the reads of the old rows, then the update
  // written to the present rows (D_i = l_i (S_i + kt_i u), see rows_update), so each state row
  // is read twice (the second time from cache) and written once, 16-bit rows converted in
  // registers. present may alias past: a
  // block's rows are all read before any is written, and blocks are disjoint columns.
  // Returns false, having done nothing, when the token folds (strong decay); the general path
  // then runs.
  static bool run_decode(const RecurrentItem& it, const RecurrentItem* next, Scratch& sc) {
    const LinearAttentionParams& p = *it.p;
    const int64_t b = it.b;
    const int32_t h = it.h, c0 = it.c0, ncols = it.ncols;
    const int dk = p.dk;
    grow(sc.kr, dk);
    grow(sc.kt, dk);
    grow(sc.kq, 1);
    grow(sc.fold, dk);
    grow(sc.o, ncols);
    grow(sc.in.k, dk);
    grow(sc.in.q, dk);
    grow(sc.in.v, ncols);
    grow(sc.in.beta, 1);
    grow(sc.in.g, 1);
    grow(sc.lam, dk);
    grow(sc.inv, dk);
    grow(sc.e, dk);
    if (sc.fold_at.empty()) sc.fold_at.resize(1);
    for (int i = 0; i < dk; ++i) sc.lam[i] = 1.f;
    gather(p, b, h, c0, ncols, ncols, 0, 1, sc.in);
    prepare(p, b, h, 0, 1, sc.in, sc);
    if (sc.fold_at[0]) return false;
    switch (p.past_dtype) {
      case LINATTN_FLOAT16: decode_blocks<LINATTN_FLOAT16>(it, next, sc); break;
      case LINATTN_BFLOAT16: decode_blocks<LINATTN_BFLOAT16>(it, next, sc); break;
      default: decode_blocks<LINATTN_FLOAT32>(it, next, sc); break;
    }
    out_row(it, b * p.o_sb + static_cast<int64_t>(p.output_head(h, 0)) * p.dv + c0,
            sc.o.data());
    if (it.stream_out) V::stream_fence();
    return true;
  }

  // Runs item it over all its tokens; a one-token item prefetches next's past state in step
  // with its sweeps.
  static void run_item(const RecurrentItem& it, const RecurrentItem* next, Scratch& sc) {
    if (decode_direct(it) && run_decode(it, next, sc)) return;
    const LinearAttentionParams& p = *it.p;
    const int64_t b = it.b;
    const int32_t h = it.h, c0 = it.c0, ncols = it.ncols;
    const int dk = p.dk, dv = p.dv, G = p.q_per_kv();
    const int nblk = (ncols + NB - 1) / NB;
    const int64_t gw = static_cast<int64_t>(nblk) * NB;  // padded columns of the item
    const int Tc = kRecurrentTokenChunk;
    const bool delta = p.delta, gated = p.gated;

    grow(sc.S, nblk * static_cast<int64_t>(dk) * NB);
    grow(sc.kr, Tc * dk);
    grow(sc.kt, Tc * dk);
    grow(sc.kq, Tc * G);
    grow(sc.kk, Tc);
    grow(sc.kqn, Tc);
    grow(sc.fold, Tc * dk);
    grow(sc.o, Tc * G * gw);
    grow(sc.in.k, Tc * dk);
    grow(sc.in.q, static_cast<int64_t>(Tc) * G * dk);
    grow(sc.in.v, Tc * gw);
    grow(sc.in.beta, Tc);
    grow(sc.in.g, Tc);
    grow(sc.lam, dk);
    grow(sc.inv, dk);
    grow(sc.e, dk);
    grow(sc.row, std::max<int64_t>(dk, gw));
    if (static_cast<int>(sc.fold_at.size()) < Tc) sc.fold_at.resize(Tc);
    float* __restrict S = sc.S.data();
    float* __restrict lam = sc.lam.data();
    float* __restrict row = sc.row.data();

    // State columns of this item into blocks (rows of NB floats, zero padded), read row by row
    // so memory sees one sequential stream per head. The item's whole slice is read before
    // anything is stored, so present may alias past. Whole float32 blocks are plain vector
    // copies (the general row conversion cost a decode step about 15% more time).
    const bool f32_past = p.past_dtype == LINATTN_FLOAT32, f32_present = p.present_dtype == LINATTN_FLOAT32;
    for (int i = 0; i < dk; ++i) {
      for (int blk = 0; blk < nblk; ++blk) {
        const int cnt = std::min(NB, ncols - blk * NB);
        float* Si = S + (static_cast<int64_t>(blk) * dk + i) * NB;
        if (p.past != nullptr && f32_past && cnt == NB) {
          const float* src = static_cast<const float*>(p.past) + b * p.past_sb + h * p.past_sh +
                             i * p.past_sk + c0 + blk * NB;
          for (int c = 0; c < 4; ++c) V::store(Si + c * W, V::load(src + c * W));
          continue;
        }
        if (p.past != nullptr)
          V::load_row(p.past, b * p.past_sb + h * p.past_sh + i * p.past_sk + c0 + blk * NB, cnt,
                      p.past_dtype, Si);
        for (int j = p.past != nullptr ? cnt : 0; j < NB; ++j) Si[j] = 0.f;
      }
    }
    for (int i = 0; i < dk; ++i) lam[i] = 1.f;

    for (int64_t t0 = 0; t0 < p.T; t0 += Tc) {
      const int n = static_cast<int>(std::min<int64_t>(Tc, p.T - t0));
      Rows& in = sc.in;
      gather(p, b, h, c0, ncols, gw, t0, n, in);
      prepare(p, b, h, t0, n, in, sc);
      // The chunk's tokens, block by block: each block stays in L1 for the whole chunk.
      const bool fetch_next = p.T == 1 && next != nullptr && next->p->past != nullptr;
      // The sweeps of a one-token step: two per block (reads, then update), dk rows each.
      typename Sw::Ahead ahead;
      if (fetch_next) ahead = ahead_of(*next, int64_t{2} * nblk * dk);
      const Chunk ch{n,           dk,          G,           sc.kr.data(),   sc.kt.data(),
                     in.q.data(), sc.kq.data(), sc.kk.data(), sc.kqn.data(), sc.fold.data(),
                     in.beta.data(), in.v.data(), sc.fold_at.data(), gw, sc.o.data(),
                     fetch_next ? &ahead : nullptr};
      for (int blk = 0; blk < nblk; ++blk) {
        // The next chunk's rows are strided slices of (B, T, H*D) tensors, read from memory
        // once: they are prefetched while the last block runs (issued a whole chunk ahead,
        // rows a power of two apart evicted each other from L2 before use).
        if (blk == nblk - 1 && t0 + Tc < p.T)
          prefetch_chunk(p, b, h, c0, ncols, t0 + Tc, std::min<int64_t>(p.T, t0 + 2 * Tc));
        float* Sb = S + static_cast<int64_t>(blk) * dk * NB;
        if (delta) Sw::template run_block<true>(Sb, ch, static_cast<int64_t>(blk) * NB);
        else Sw::template run_block<false>(Sb, ch, static_cast<int64_t>(blk) * NB);
      }
      for (int t = 0; t < n; ++t)
        for (int g = 0; g < G; ++g) {
          const int64_t off = b * p.o_sb + (t0 + t) * p.o_st +
                              static_cast<int64_t>(p.output_head(h, g)) * dv + c0;
          out_row(it, off, sc.o.data() + (static_cast<int64_t>(t) * G + g) * gw);
        }
    }
    if (it.stream_out) V::stream_fence();

    // present = diag(L_T) S~, row by row.
    for (int i = 0; i < dk; ++i) {
      const float l = p.decay_per_key_dim ? lam[i] : lam[0];
      for (int blk = 0; blk < nblk; ++blk) {
        const int cnt = std::min(NB, ncols - blk * NB);
        const float* Si = S + (static_cast<int64_t>(blk) * dk + i) * NB;
        if (f32_present && cnt == NB) {
          float* dst = static_cast<float*>(p.present) + b * p.pres_sb + h * p.pres_sh +
                       i * p.pres_sk + c0 + blk * NB;
          const R lv = V::set1(gated ? l : 1.f);
          for (int c = 0; c < 4; ++c) V::store(dst + c * W, V::mul(lv, V::load(Si + c * W)));
          continue;
        }
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
