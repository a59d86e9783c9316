// The chunked (WY) LinearAttention prefill kernel, written once over a vector-operations struct
// V (simd_portable.hpp, simd_avx2.hpp, simd_avx512.hpp) and instantiated in chunked_portable.cpp,
// chunked_avx2.cpp and chunked_avx512.cpp. Include only from those files (everything is a
// template over V, so no inline function built for one instruction set reaches another).
//
// Math (/work/shared/docs/CHUNKED.md): per (sequence b, kv head h) tokens are cut into chunks of
// kChunk = 64; inside a chunk, with G_r the prefix sum of g, L_r = exp(G_r), S0 the state before
// the chunk:
//   A  = strictly lower, A_rs = b_r exp(G_r - G_s) (k_r . k_s)     (delta rules; else 0)
//   T  = (I + A)^-1                                                 (forward substitution)
//   [W' | U'] = T [-diag(b L) K | diag(b) V]                         (W' = -W)
//   U  = U' + W' S0                                                 (delta; else U = V)
//   O  = scale diag(L) Q S0 + (scale P o Q K^T) U,  P_rs = exp(G_r - G_s) for s <= r
//   S  = L_n S0 + (K^T diag(exp(G_n - G))) U                        (n = last token)
// exp is only taken of G_r - G_s with s <= r (masked before exp), never of G alone with a
// positive argument. Everything except the three S0 products is independent of S0.
//
// All the heavy work is C = beta C + A B on row-major float tiles, done by one register-blocked
// micro-kernel (kMr rows x 2 vectors of columns, the A element broadcast from memory). Value
// columns are independent under every rule, so a work item may cover a column range of a head
// (the S0-independent part is then recomputed per range). Per-key-dim decay is not handled
// here (the dispatcher sends it to the recurrent kernel).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/params.hpp"

namespace linattn::detail::cpu {

constexpr int kChunk = 48;  // tokens per chunk (fixed: chunk_size is only a hint)
// Row stride of the chunk-square tiles (E, A, T, P) and of the transposed keys: a multiple of
// every vector width and column tile, >= kChunk.
constexpr int kLd = 64;
constexpr int kAhead = 8;  // input/output rows prefetched ahead of the copy loops

template <class V>
struct ChunkedKernel {
  using R = typename V::R;
  static constexpr int W = V::W;
  static constexpr int CT = 2 * W;  // columns per micro-tile (tile widths are padded to this)
  static constexpr int kMr = 6;     // rows per micro-tile: 12 accumulators + 2 B + 1 A register

  struct Scratch {
    std::vector<float> K, Kt, Q, E, A, T, P, WU, S, O, G, L, e, beta;
  };

  static void grow(std::vector<float>& b, int64_t n) {
    if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
  }
  static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

  // C[0..M, 0..CT) = beta C + A[0..M, 0..k) B[0..k, 0..CT). beta == 0 never reads C.
  template <int M>
  static void tile(int k, const float* __restrict A, int64_t lda, const float* __restrict B,
                   int64_t ldb, float* __restrict C, int64_t ldc, float beta) {
    R acc[M][2];
#pragma GCC unroll 8
    for (int i = 0; i < M; ++i) acc[i][0] = acc[i][1] = V::zero();
#pragma GCC unroll 4
    for (int kk = 0; kk < k; ++kk) {
      const float* b = B + static_cast<int64_t>(kk) * ldb;
      const R b0 = V::load(b), b1 = V::load(b + W);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        const R a = V::set1(A[i * lda + kk]);
        acc[i][0] = V::fma(a, b0, acc[i][0]);
        acc[i][1] = V::fma(a, b1, acc[i][1]);
      }
    }
    if (beta == 0.f) {
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        V::store(C + i * ldc, acc[i][0]);
        V::store(C + i * ldc + W, acc[i][1]);
      }
    } else if (beta == 1.f) {
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        V::store(C + i * ldc, V::add(V::load(C + i * ldc), acc[i][0]));
        V::store(C + i * ldc + W, V::add(V::load(C + i * ldc + W), acc[i][1]));
      }
    } else {
      const R bv = V::set1(beta);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) {
        V::store(C + i * ldc, V::fma(bv, V::load(C + i * ldc), acc[i][0]));
        V::store(C + i * ldc + W, V::fma(bv, V::load(C + i * ldc + W), acc[i][1]));
      }
    }
  }

  // C = beta C + A B for rows [0, m) and columns [0, n) (n a multiple of CT), inner size k.
  // a_lower: A is lower triangular and stored with zeros above the diagonal, so a row block
  // stops its inner loop at its last row. c_lower: only entries on or below the diagonal are
  // wanted (column tiles right of a row block are skipped and left unwritten).
  static void gemm(int m, int n, int k, const float* A, int64_t lda, const float* B, int64_t ldb,
                   float* C, int64_t ldc, float beta, bool a_lower = false, bool c_lower = false) {
    for (int j0 = 0; j0 < n; j0 += CT)
      for (int i0 = 0; i0 < m; i0 += kMr) {
        const int mr = std::min(kMr, m - i0);
        const int iend = i0 + mr;
        if (c_lower && j0 >= iend) continue;
        const int kk = a_lower ? std::min(k, iend) : k;
        const float* a = A + static_cast<int64_t>(i0) * lda;
        const float* b = B + j0;
        float* c = C + static_cast<int64_t>(i0) * ldc + j0;
        switch (mr) {
          case 6: tile<6>(kk, a, lda, b, ldb, c, ldc, beta); break;
          case 5: tile<5>(kk, a, lda, b, ldb, c, ldc, beta); break;
          case 4: tile<4>(kk, a, lda, b, ldb, c, ldc, beta); break;
          case 3: tile<3>(kk, a, lda, b, ldb, c, ldc, beta); break;
          case 2: tile<2>(kk, a, lda, b, ldb, c, ldc, beta); break;
          default: tile<1>(kk, a, lda, b, ldb, c, ldc, beta); break;
        }
      }
  }

  // T = (I + A)^-1 for the strictly lower n x n matrix A (row stride kLd), rows of T written
  // in full (kLd floats, zeros above the diagonal). Row r = e_r - sum_{s<r} A_rs T_s, held in
  // registers over the kLd columns (T_s is zero right of s).
  static void invert_unit_lower(int n, const float* __restrict A, float* __restrict T) {
    constexpr int NVEC = kLd / W;
    for (int r = 0; r < n; ++r) {
      R acc[NVEC];
      for (int c = 0; c < NVEC; ++c) acc[c] = V::zero();
      const float* Ar = A + static_cast<int64_t>(r) * kLd;
      for (int s = 0; s < r; ++s) {
        const R a = V::set1(-Ar[s]);
        const float* Ts = T + static_cast<int64_t>(s) * kLd;
        const int nv = s / W + 1;  // vectors of T_s that can be non-zero
        for (int c = 0; c < nv; ++c) acc[c] = V::fma(a, V::load(Ts + c * W), acc[c]);
      }
      float* Tr = T + static_cast<int64_t>(r) * kLd;
      for (int c = 0; c < NVEC; ++c) V::store(Tr + c * W, acc[c]);
      Tr[r] = 1.f;
    }
  }

  static float load1(const void* base, int64_t off, linattn_dtype t) {
    float x = 0.f;
    V::load_row(base, off, 1, t, &x);
    return x;
  }

  static void prefetch_span(const void* base, int64_t off, int64_t n, linattn_dtype t,
                            bool write = false) {
    const int64_t es = t == LINATTN_FLOAT32 ? 4 : t == LINATTN_FLOAT64 ? 8 : 2;
    const char* a = static_cast<const char*>(base) + off * es;
    if (write) {
      for (int64_t x = 0; x < n * es; x += 64) __builtin_prefetch(a + x, 1);
      __builtin_prefetch(a + n * es - 1, 1);
      return;
    }
    for (int64_t x = 0; x < n * es; x += 64) __builtin_prefetch(a + x);
    __builtin_prefetch(a + n * es - 1);
  }

  // The rows of tokens [t_begin, t_end) this item reads and writes. They are strided slices of
  // (B, T, H*D) tensors: one row per token, rows a power-of-two distance apart, so a whole
  // chunk's rows fall into a few cache sets and evict each other if fetched far ahead, and the
  // hardware prefetchers do not follow them. They are fetched kAhead rows ahead of use.
  static void prefetch_rows(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
                            int32_t ncols, int64_t t_begin, int64_t t_end) {
    const linattn_dtype at = p.act_dtype;
    const int dk = p.dk, G = p.q_per_kv();
    for (int64_t tt = t_begin; tt < t_end; ++tt) {
      prefetch_span(p.k, b * p.k_sb + tt * p.k_st + static_cast<int64_t>(p.key_head(h)) * dk, dk, at);
      for (int g = 0; g < G; ++g)
        prefetch_span(p.q, b * p.q_sb + tt * p.q_st + static_cast<int64_t>(p.query_head(h, g)) * dk,
                      dk, at);
      prefetch_span(p.v, b * p.v_sb + tt * p.v_st + static_cast<int64_t>(h) * p.dv + c0, ncols, at);
      for (int g = 0; g < G; ++g) {  // output rows: fetched for writing ahead of the stores
        const int64_t es = at == LINATTN_FLOAT32 ? 4 : 2;
        const char* o = static_cast<const char*>(p.out) +
                        (b * p.o_sb + tt * p.o_st + static_cast<int64_t>(p.output_head(h, g)) * p.dv + c0) * es;
        for (int64_t x = 0; x < ncols * es; x += 64) __builtin_prefetch(o + x, 1);
        __builtin_prefetch(o + ncols * es - 1, 1);
      }
      if (p.gated) __builtin_prefetch(static_cast<const char*>(p.decay) +
                                      (b * p.g_sb + tt * p.g_st + h) * (at == LINATTN_FLOAT32 ? 4 : 2));
    }
  }

  // exp of n floats in place.
  static void exp_row(float* x, int n) {
    int i = 0;
    for (; i + W <= n; i += W) V::store(x + i, V::exp(V::load(x + i)));
    if (i < n) {
      alignas(64) float tmp[W] = {};
      for (int j = i; j < n; ++j) tmp[j - i] = x[j];
      V::store(tmp, V::exp(V::load(tmp)));
      for (int j = i; j < n; ++j) x[j] = tmp[j - i];
    }
  }

  // Sequence b, kv head h, value columns [c0, c0 + ncols), all T tokens. Per-head decay only.
  static void run_item(const LinearAttentionParams& p, int64_t b, int32_t h, int32_t c0,
                       int32_t ncols, Scratch& sc) {
    const int dk = p.dk, G = p.q_per_kv();
    const int64_t dkp = round_up(dk, CT), dvp = round_up(ncols, CT);
    const int64_t wu = dkp + dvp;  // row stride of [W' | U]
    const int Cc = kChunk;
    constexpr int Ld = kLd;
    const linattn_dtype at = p.act_dtype;
    const int32_t hk = p.key_head(h);
    const bool delta = p.delta, gated = p.gated;

    grow(sc.K, Cc * dkp);
    grow(sc.Kt, dkp * Ld);
    grow(sc.Q, G * Cc * dkp);
    grow(sc.E, Cc * Ld);
    grow(sc.A, Cc * Ld);
    grow(sc.T, Cc * Ld);
    grow(sc.P, Cc * Ld);
    grow(sc.WU, Cc * wu);
    grow(sc.S, static_cast<int64_t>(dk) * dvp);
    grow(sc.O, G * Cc * dvp);
    grow(sc.G, Cc);
    grow(sc.L, Cc);
    grow(sc.e, 2 * Ld);
    grow(sc.beta, Ld);
    float* __restrict K = sc.K.data();
    float* __restrict Kt = sc.Kt.data();
    float* __restrict E = sc.E.data();
    float* __restrict Am = sc.A.data();
    float* __restrict Tm = sc.T.data();
    float* __restrict Pm = sc.P.data();
    float* __restrict WU = sc.WU.data();
    float* __restrict S = sc.S.data();
    float* __restrict Gs = sc.G.data();
    float* __restrict Ls = sc.L.data();
    float* __restrict es = sc.e.data();
    float* __restrict bs = sc.beta.data();
    float* U = WU + dkp;  // U' then U, row stride wu

    // The item's state slice, read whole before anything is stored (present may alias past).
    for (int i = 0; i < dk; ++i) {
      float* Si = S + static_cast<int64_t>(i) * dvp;
      if (p.past != nullptr)
        V::load_row(p.past, b * p.past_sb + h * p.past_sh + i * p.past_sk + c0, ncols,
                    p.past_dtype, Si);
      for (int64_t j = p.past != nullptr ? ncols : 0; j < dvp; ++j) Si[j] = 0.f;
    }
    // Padding that no chunk overwrites: K columns past dk, W'/U' columns past the data.
    std::fill(K, K + Cc * dkp, 0.f);
    std::fill(sc.Q.begin(), sc.Q.begin() + G * Cc * dkp, 0.f);
    std::fill(WU, WU + Cc * wu, 0.f);
    std::fill(sc.O.begin(), sc.O.begin() + G * Cc * dvp, 0.f);

    for (int64_t t0 = 0; t0 < p.T; t0 += Cc) {
      const int n = static_cast<int>(std::min<int64_t>(Cc, p.T - t0));
      const int np = static_cast<int>(round_up(n, CT));  // token columns as a GEMM width

      // Decay prefix sums and the factors built from them.
      float acc = 0.f;
      for (int r = 0; r < n; ++r) {
        if (gated) acc += load1(p.decay, b * p.g_sb + (t0 + r) * p.g_st + h, at);
        Gs[r] = acc;
        if (delta)
          bs[r] = load1(p.beta, b * p.beta_sb + (t0 + r) * p.beta_st + (p.beta_shared ? 0 : h), at);
      }
      const float Gn = Gs[n - 1];
      for (int r = 0; r < n; ++r) {
        Ls[r] = gated ? Gs[r] : 1.f;
        es[r] = gated ? Gn - Gs[r] : 1.f;  // exponent <= 0 for decaying gates
      }
      if (gated) {
        exp_row(Ls, n);
        exp_row(es, n);
      }
      const float Ln = Ls[n - 1];
      for (int r = n; r < Ld; ++r) es[r] = 0.f;  // the padded tokens contribute nothing
      // E_rs = exp(G_r - G_s) for s <= r, 0 above the diagonal (masked before the exp).
      for (int r = 0; r < n; ++r) {
        float* Er = E + static_cast<int64_t>(r) * Ld;
        for (int s = 0; s <= r; ++s) Er[s] = gated ? Gs[r] - Gs[s] : 0.f;
        if (gated) exp_row(Er, r + 1);
        else
          for (int s = 0; s <= r; ++s) Er[s] = 1.f;
        for (int s = r + 1; s < Ld; ++s) Er[s] = 0.f;
      }

      // Keys as rows (K) and transposed (Kt).
      const int64_t k_off = b * p.k_sb + t0 * p.k_st + static_cast<int64_t>(hk) * dk;
      for (int r = 0; r < n; ++r) {
        if (r + kAhead < n) prefetch_span(p.k, k_off + (r + kAhead) * p.k_st, dk, at);
        V::load_row(p.k, k_off + r * p.k_st, dk, at, K + r * dkp);
      }
      for (int i = 0; i < dk; ++i) {
        float* kt = Kt + static_cast<int64_t>(i) * Ld;
        for (int r = 0; r < n; ++r) kt[r] = K[r * dkp + i];
        for (int r = n; r < np; ++r) kt[r] = 0.f;
      }

      // Values: straight into U (no delta), or into the first output tile (free until the
      // outputs are computed) as the right-hand side of U' (delta).
      float* Vt = sc.O.data();
      const int64_t v_off = b * p.v_sb + t0 * p.v_st + static_cast<int64_t>(h) * p.dv + c0;
      for (int r = 0; r < n; ++r) {
        if (r + kAhead < n) prefetch_span(p.v, v_off + (r + kAhead) * p.v_st, ncols, at);
        V::load_row(p.v, v_off + r * p.v_st, ncols, at, delta ? Vt + r * dvp : U + r * wu);
      }

      if (delta) {
        // A = b_r E_rs (k_r . k_s) below the diagonal; T = (I + A)^-1;
        // W' = T diag(-b L) K and U' = T diag(b) V (the diagonals folded into T's columns).
        gemm(n, np, dk, K, dkp, Kt, Ld, Am, Ld, 0.f, false, true);
        for (int r = 0; r < n; ++r) {
          float* Ar = Am + static_cast<int64_t>(r) * Ld;
          const float* Er = E + static_cast<int64_t>(r) * Ld;
          const R br = V::set1(bs[r]);
          int s = 0;
          for (; s + W <= r; s += W) V::store(Ar + s, V::mul(V::mul(br, V::load(Er + s)), V::load(Ar + s)));
          for (; s < r; ++s) Ar[s] *= bs[r] * Er[s];
        }
        invert_unit_lower(n, Am, Tm);
        float* nbl = es + Ld;  // -b L per token, zero past n (as are bs)
        for (int r = 0; r < Ld; ++r) {
          if (r >= n) bs[r] = 0.f;
          nbl[r] = r < n ? -bs[r] * Ls[r] : 0.f;
        }
        for (int r = 0; r < n; ++r) {
          const float* Tr = Tm + static_cast<int64_t>(r) * Ld;
          float* Tb = Am + static_cast<int64_t>(r) * Ld;   // A is not needed any more
          float* TbL = Pm + static_cast<int64_t>(r) * Ld;  // P is built later
          // T is zero right of the diagonal; bs and nbl are zero past n.
          for (int s = 0; s < Ld; s += W) {
            const R t = V::load(Tr + s);
            V::store(Tb + s, V::mul(t, V::load(bs + s)));
            V::store(TbL + s, V::mul(t, V::load(nbl + s)));
          }
        }
        gemm(n, static_cast<int>(dkp), n, Pm, Ld, K, dkp, WU, wu, 0.f, true);
        gemm(n, static_cast<int>(dvp), n, Am, Ld, Vt, dvp, U, wu, 0.f, true);
        // U = U' + W' S0.
        gemm(n, static_cast<int>(dvp), dk, WU, wu, S, dvp, U, wu, 1.f);
      }

      // Per query head: O = (scale L Q) S0 + (scale E o Q K^T) U.
      for (int g = 0; g < G; ++g) {
        float* Q = sc.Q.data() + static_cast<int64_t>(g) * Cc * dkp;
        float* O = sc.O.data() + static_cast<int64_t>(g) * Cc * dvp;
        const int32_t hq = p.query_head(h, g);
        const int64_t q_off = b * p.q_sb + t0 * p.q_st + static_cast<int64_t>(hq) * dk;
        for (int r = 0; r < n; ++r) {
          if (r + kAhead < n) prefetch_span(p.q, q_off + (r + kAhead) * p.q_st, dk, at);
          V::load_row(p.q, q_off + r * p.q_st, dk, at, Q + r * dkp);
        }
        gemm(n, np, dk, Q, dkp, Kt, Ld, Pm, Ld, 0.f, false, true);
        if (gated && g + 1 == G) {  // Kt is not needed as is any more: scale it for the state update
          for (int i = 0; i < dk; ++i) {
            float* kt = Kt + static_cast<int64_t>(i) * Ld;
            for (int r = 0; r < np; r += W) V::store(kt + r, V::mul(V::load(kt + r), V::load(es + r)));
          }
        }
        for (int r = 0; r < n; ++r) {
          float* Pr = Pm + static_cast<int64_t>(r) * Ld;
          const float* Er = E + static_cast<int64_t>(r) * Ld;
          const R sc_ = V::set1(p.scale);
          int s = 0;
          for (; s + W <= r + 1; s += W) V::store(Pr + s, V::mul(V::mul(sc_, V::load(Er + s)), V::load(Pr + s)));
          for (; s <= r; ++s) Pr[s] *= p.scale * Er[s];
          for (int s = r + 1; s < Ld; ++s) Pr[s] = 0.f;
          const R f = V::set1(p.scale * Ls[r]);
          for (int64_t j = 0; j < dkp; j += W) V::store(Q + r * dkp + j, V::mul(f, V::load(Q + r * dkp + j)));
        }
        gemm(n, static_cast<int>(dvp), dk, Q, dkp, S, dvp, O, dvp, 0.f);
        gemm(n, static_cast<int>(dvp), n, Pm, Ld, U, wu, O, dvp, 1.f, true);
        const int32_t ho = p.output_head(h, g);
        const int64_t o_off = b * p.o_sb + t0 * p.o_st + static_cast<int64_t>(ho) * p.dv + c0;
        for (int r = 0; r < n; ++r) {
          if (r + kAhead < n) prefetch_span(p.out, o_off + (r + kAhead) * p.o_st, ncols, at, true);
          V::store_row(p.out, o_off + r * p.o_st, ncols, at, O + r * dvp);
        }
      }

      // The first rows of the next chunk (the copy loops fetch the rest kAhead rows ahead).
      prefetch_rows(p, b, h, c0, ncols, std::min<int64_t>(p.T, t0 + Cc),
                    std::min<int64_t>(p.T, t0 + Cc + kAhead));
      // S = L_n S0 + (K^T diag(exp(G_n - G))) U.
      gemm(dk, static_cast<int>(dvp), n, Kt, Ld, U, wu, S, dvp, gated ? Ln : 1.f);
    }

    for (int i = 0; i < dk; ++i)
      V::store_row(p.present, b * p.pres_sb + h * p.pres_sh + i * p.pres_sk + c0, ncols,
                   p.present_dtype, S + static_cast<int64_t>(i) * dvp);
  }
};

}  // namespace linattn::detail::cpu
