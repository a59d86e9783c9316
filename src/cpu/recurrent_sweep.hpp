// The state sweeps of the fused recurrent kernel (recurrent_kernel.hpp holds the work item:
// inputs, decay folding, state in and out), a template over the vector operations V like it.
// Include only through recurrent_kernel.hpp.
//
// Two tokens share one sweep. The reads of token t + 1 from the state before token t,
//   r1~ = S~^T kr_{t+1},   y1~ = S~^T qt_{t+1},
// are corrected for token t's update by two scalars of the inputs alone:
//   r_{t+1} = r1~ + (kt_t . kr_{t+1}) u_t,   y_{t+1} = y1~ + (kt_t . qt_{t+1}) u_t,
// so one sweep applies both updates (S~ += kt_t u_t^T + kt_{t+1} u_{t+1}^T) and reads the next
// two tokens from the updated rows: per state vector and two tokens 1 load, 1 store and 6 FMAs.
// The state's store is what bounds a one-token sweep (1 store per 3 FMAs; about 1.5 cycles per
// 256-bit store on the Zen 3 this was measured on, docs/PERFORMANCE.md); a pair halves it. A
// step is one token when the next token starts with a fold, is past the chunk, or the kv head
// has several query heads.
#pragma once

#include <cstdint>

#include "linattn/linattn.h"

namespace linattn::detail::cpu {

template <class V>
struct RecurrentSweeps {
  using R = typename V::R;
  static constexpr int W = V::W;
  static constexpr int NB = 4 * W;  // state columns per block (4 vectors per row)

  static float hsum(R x) {
    alignas(64) float f[W];
    V::store(f, x);
    float s = 0.f;
    for (int i = 0; i < W; ++i) s += f[i];
    return s;
  }

  static float dot(const float* __restrict a, const float* __restrict b, int n) {
    R s0 = V::zero(), s1 = V::zero();
    int i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      s0 = V::fma(V::load(a + i), V::load(b + i), s0);
      s1 = V::fma(V::load(a + i + W), V::load(b + i + W), s1);
    }
    for (; i + W <= n; i += W) s0 = V::fma(V::load(a + i), V::load(b + i), s0);
    float s = hsum(V::add(s0, s1));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }

  // Another item's state, prefetched a few lines per row of each sweep (see run_item: the
  // next decode item's state, fetched in step with this one's arithmetic).
  struct Ahead {
    const char* row = nullptr;  // the state row being fetched; nullptr when done
    int64_t row_bytes = 0;      // bytes between state rows
    int64_t len = 0;            // bytes of each row to fetch
    int64_t off = 0;            // next offset within the row
    int rows_left = 0;          // rows after the current one
    int per_step = 1;           // lines per sweep row
    void step() {
      for (int j = 0; j < per_step && row != nullptr; ++j) {
        __builtin_prefetch(row + off, 0, 1);
        off += 64;
        if (off >= len) {
          off = 0;
          row = rows_left-- > 0 ? row + row_bytes : nullptr;
        }
      }
    }
  };

  // Reads of up to two tokens from one state, per column vector of the block.
  struct Reads {
    R r[2][4], y[2][4];
  };

  // One sweep over a block: NU (0-2) rank-one updates S~ += kt_j u_j^T, then NR (0-2) tokens'
  // reads on the updated rows (y_j = S~^T qt_j, and r_j = S~^T kr_j with the delta rules). Each
  // row's vectors are loaded and stored once. A pass covers NV of the 4 vectors of every row,
  // so that the live vectors (NU u's and NR or 2 NR accumulators per column vector) fit the
  // register file.
  template <bool DELTA, int NU, int NR>
  [[gnu::noinline]] static void sweep(float* __restrict S, int dk, const float* const* kt, const R (*u)[4],
                    const float* const* kr, const float* const* qt, Reads* rd, Ahead* ah) {
    constexpr int per_vector = NU + (DELTA ? 2 : 1) * NR;
    constexpr int budget = V::kRegisters - 4;  // room for the row's value and the broadcasts
    constexpr int NV = per_vector * 4 <= budget ? 4 : per_vector * 2 <= budget ? 2 : 1;
    for (int c0 = 0; c0 < 4; c0 += NV) {
      R uu[NU > 0 ? NU : 1][NV], y[NR > 0 ? NR : 1][NV], r[NR > 0 ? NR : 1][NV];
      for (int c = 0; c < NV; ++c) {
        for (int j = 0; j < NU; ++j) uu[j][c] = u[j][c0 + c];
        for (int j = 0; j < NR; ++j) y[j][c] = r[j][c] = V::zero();
      }
      Ahead* const a = c0 == 0 ? ah : nullptr;  // the first pass carries the prefetches
      for (int i = 0; i < dk; ++i) {
        if (a != nullptr) a->step();
        float* __restrict Si = S + static_cast<int64_t>(i) * NB + c0 * W;
        R kb[NU > 0 ? NU : 1], qb[NR > 0 ? NR : 1], rb[NR > 0 ? NR : 1];
        for (int j = 0; j < NU; ++j) kb[j] = V::set1(kt[j][i]);
        for (int j = 0; j < NR; ++j) {
          qb[j] = V::set1(qt[j][i]);
          if (DELTA) rb[j] = V::set1(kr[j][i]);
        }
#pragma GCC unroll 4
        for (int c = 0; c < NV; ++c) {
          R s = V::load(Si + c * W);
          if constexpr (NU > 0) {
            for (int j = 0; j < NU; ++j) s = V::fma(kb[j], uu[j][c], s);
            V::store(Si + c * W, s);
          }
          for (int j = 0; j < NR; ++j) {
            y[j][c] = V::fma(qb[j], s, y[j][c]);
            if (DELTA) r[j][c] = V::fma(rb[j], s, r[j][c]);
          }
        }
      }
      for (int j = 0; j < NR; ++j)
        for (int c = 0; c < NV; ++c) {
          rd->y[j][c0 + c] = y[j][c];
          if (DELTA) rd->r[j][c0 + c] = r[j][c];
        }
    }
  }

  // The one-token step straight on the caller's state rows of type T (run_decode in
  // recurrent_kernel.hpp), for the NB columns at S (rows ld elements apart); 16-bit rows are
  // converted in registers. First the reads of the state before the update: y = S^T qt and,
  // with the delta rules, r = S^T kr.
  template <linattn_dtype T>
  static R load_state(const void* row, int c) {
    if constexpr (T == LINATTN_FLOAT32) return V::load(static_cast<const float*>(row) + c * W);
    else return V::load16(static_cast<const char*>(row) + c * W * 2, T);
  }
  template <linattn_dtype T>
  static void store_state(void* row, int c, R v) {
    if constexpr (T == LINATTN_FLOAT32) V::store(static_cast<float*>(row) + c * W, v);
    else V::store16(static_cast<char*>(row) + c * W * 2, T, v);
  }
  template <linattn_dtype T>
  static const char* row_at(const void* S, int64_t ld, int i) {
    return static_cast<const char*>(S) + static_cast<int64_t>(i) * ld * (T == LINATTN_FLOAT32 ? 4 : 2);
  }

  template <bool DELTA, linattn_dtype T>
  [[gnu::noinline]] static void rows_read(const void* S, int64_t ld, int dk, const float* kr,
                                          const float* qt, R* y, R* r, Ahead* ah) {
    R yy[4], rr[4];
    for (int c = 0; c < 4; ++c) yy[c] = rr[c] = V::zero();
    for (int i = 0; i < dk; ++i) {
      if (ah != nullptr) ah->step();
      const char* Si = row_at<T>(S, ld, i);
      const R qb = V::set1(qt[i]);
      const R rb = V::set1(DELTA ? kr[i] : 0.f);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const R s = load_state<T>(Si, c);
        yy[c] = V::fma(qb, s, yy[c]);
        if (DELTA) rr[c] = V::fma(rb, s, rr[c]);
      }
    }
    for (int c = 0; c < 4; ++c) {
      y[c] = yy[c];
      if (DELTA) r[c] = rr[c];
    }
  }

  // Then the update, written to D (rows ldd elements apart; D may be S): D_i = l_i (S_i + kt_i
  // u) with l_i = lam[per_row ? i : 0] (the running decay folded back), or 1 without a gate.
  template <linattn_dtype T>
  [[gnu::noinline]] static void rows_update(const void* S, int64_t lds, void* D, int64_t ldd,
                                            int dk, const float* kt, const R* u,
                                            const float* lam, bool gated, bool per_row) {
    for (int i = 0; i < dk; ++i) {
      const char* Si = row_at<T>(S, lds, i);
      char* Di = const_cast<char*>(row_at<T>(D, ldd, i));
      const R kb = V::set1(kt[i]);
      const R lb = V::set1(gated ? lam[per_row ? i : 0] : 1.f);
      R s[4];
      for (int c = 0; c < 4; ++c) s[c] = V::fma(kb, u[c], load_state<T>(Si, c));
      for (int c = 0; c < 4; ++c) store_state<T>(Di, c, V::mul(lb, s[c]));
    }
  }

  // y = S~^T qt without an update: the heads beyond a kv head's first query head, which read
  // S~ before the token's update.
  static void read_y(float* S, int dk, const float* qt, R* y) {
    Reads rd;
    const float* q[1] = {qt};
    sweep<false, 0, 1>(S, dk, nullptr, nullptr, nullptr, q, &rd, nullptr);
    for (int c = 0; c < 4; ++c) y[c] = rd.y[0][c];
  }

  static void fold_rows(float* __restrict S, int dk, const float* __restrict f) {
    for (int i = 0; i < dk; ++i) {
      const R fi = V::set1(f[i]);
      float* Si = S + static_cast<int64_t>(i) * NB;
      for (int c = 0; c < 4; ++c) V::store(Si + c * W, V::mul(fi, V::load(Si + c * W)));
    }
  }

  // Per-token inputs of a chunk, prepared once per item (see run_item). kk[t] = kt_t . kr_{t+1}
  // and kqn[t] = kt_t . qt_{t+1} (first query head) correct token t + 1's reads in a pair.
  struct Chunk {
    int n, dk, G;
    const float *kr, *kt, *qt, *kq, *kk, *kqn, *fold, *beta, *v;
    const unsigned char* fold_at;
    int64_t v_st;  // floats between tokens in v (and in o per query head)
    float* o;      // o[(t * G + g) * v_st + column]
    Ahead* ahead;  // prefetched during the sweeps, or nullptr
  };

  // Whether the step at token t covers tokens t and t + 1 (see the top of this file).
  static bool pairs(const Chunk& ch, int t) {
    return ch.G == 1 && t + 1 < ch.n && !ch.fold_at[t + 1];
  }

  // NU updates with tokens t (and t + 1), then the reads of nr tokens from tn.
  template <bool DELTA, int NU>
  static void update_and_read(float* S, const Chunk& ch, int t, const R (*u)[4], int tn, int nr,
                              Reads* rd) {
    const int64_t dk = ch.dk, G = ch.G;
    const float *kt[2] = {}, *kr[2] = {}, *qt[2] = {};
    for (int j = 0; j < NU; ++j) kt[j] = ch.kt + (t + j) * dk;
    for (int j = 0; j < nr; ++j) {
      kr[j] = ch.kr + (tn + j) * dk;
      qt[j] = ch.qt + (tn + j) * G * dk;
    }
    if (nr == 2) sweep<DELTA, NU, 2>(S, ch.dk, kt, u, kr, qt, rd, ch.ahead);
    else if (nr == 1) sweep<DELTA, NU, 1>(S, ch.dk, kt, u, kr, qt, rd, ch.ahead);
    else sweep<DELTA, NU, 0>(S, ch.dk, kt, u, kr, qt, rd, ch.ahead);
  }

  // The reads that start the step at token t (at the chunk's start and after a fold).
  template <bool DELTA>
  static void read_step(float* S, const Chunk& ch, int t, Reads* rd) {
    update_and_read<DELTA, 0>(S, ch, t, nullptr, t, pairs(ch, t) ? 2 : 1, rd);
  }

  // u = beta (v - r) (delta rules) or v, for token t.
  template <bool DELTA>
  static void make_u(const Chunk& ch, int t, const R* r, int64_t col, R* u) {
    const float* v = ch.v + t * ch.v_st + col;
    if (DELTA) {
      const R b = V::set1(ch.beta[t]);
      for (int c = 0; c < 4; ++c) u[c] = V::mul(b, V::sub(V::load(v + c * W), r[c]));
    } else {
      for (int c = 0; c < 4; ++c) u[c] = V::load(v + c * W);
    }
  }

  // o = y + kq u for token t, query head g.
  static void store_o(const Chunk& ch, int t, int g, int64_t col, const R* y, float kq,
                      const R* u) {
    float* o = ch.o + (static_cast<int64_t>(t) * ch.G + g) * ch.v_st + col;
    const R k = V::set1(kq);
    for (int c = 0; c < 4; ++c) V::store(o + c * W, V::fma(k, u[c], y[c]));
  }

  // All tokens of a chunk on one block (columns [col, col + NB) of v and o).
  template <bool DELTA>
  static void run_block(float* __restrict S, const Chunk& ch, int64_t col) {
    const int dk = ch.dk, G = ch.G;
    Reads rd;
    R u[2][4];
    if (ch.fold_at[0]) fold_rows(S, dk, ch.fold);
    read_step<DELTA>(S, ch, 0, &rd);
    for (int t = 0; t < ch.n;) {
      const int nu = pairs(ch, t) ? 2 : 1;
      make_u<DELTA>(ch, t, rd.r[0], col, u[0]);
      // o_g = y_g + scale (k . q_g) u; heads beyond the first read S~_old in their own sweep.
      for (int g = 0; g < G; ++g) {
        R yg[4];
        if (g == 0) {
          for (int c = 0; c < 4; ++c) yg[c] = rd.y[0][c];
        } else {
          read_y(S, dk, ch.qt + (static_cast<int64_t>(t) * G + g) * dk, yg);
        }
        store_o(ch, t, g, col, yg, ch.kq[t * G + g], u[0]);
      }
      if (nu == 2) {  // token t + 1, its reads corrected for token t's update
        const R a = V::set1(ch.kk[t]), b = V::set1(ch.kqn[t]);
        R r1[4], y1[4];
        for (int c = 0; c < 4; ++c) {
          r1[c] = V::fma(a, u[0][c], rd.r[1][c]);
          y1[c] = V::fma(b, u[0][c], rd.y[1][c]);
        }
        make_u<DELTA>(ch, t + 1, r1, col, u[1]);
        store_o(ch, t + 1, 0, col, y1, ch.kq[t + 1], u[1]);
      }
      const int tn = t + nu;
      const bool fold = tn < ch.n && ch.fold_at[tn];
      const int nr = tn < ch.n && !fold ? (pairs(ch, tn) ? 2 : 1) : 0;
      if (nu == 2) update_and_read<DELTA, 2>(S, ch, t, u, tn, nr, &rd);
      else update_and_read<DELTA, 1>(S, ch, t, u, tn, nr, &rd);
      if (fold) {
        fold_rows(S, dk, ch.fold + static_cast<int64_t>(tn) * dk);
        read_step<DELTA>(S, ch, tn, &rd);
      }
      t = tn;
    }
  }
};

}  // namespace linattn::detail::cpu
