// Token-recurrent LinearAttention kernels, shared by the dense entry
// (linear_attention_recurrent.cu) and the serving entry (serving_recurrent.cu). Each kernel is
// a template over the call it runs: `LinearAttentionParams` (the dense operator) or
// `LinearAttentionServing` (docs/SERVING.md). The serving instances resolve their sequence from
// the index views first (core/serving_params.hpp, resolve_sequence) and then run the same
// recurrence; every serving-only step sits behind `if constexpr`, so the dense instances are the
// dense kernels and pay nothing for serving.
//
// Work split. One block owns a d_k x (4 * CPT) column slab of one (sequence, kv head) state.
// Every step of the recurrence is column-separable (r = S^T k, u = beta (v - r), S += k u^T and
// o = S^T q act column by column), so slabs need no communication. Inside a block (4 warps),
// lane = 8 row lanes x 4 column lanes; a thread keeps RPT rows x CPT columns of the slab in
// registers for all T tokens, so the state is read once and written once per call. Column sums
// over d_k are a per-thread partial, a 3-step xor shuffle over the row lanes, and one exchange
// of the 4 warps' partials through a double-buffered shared array (one __syncthreads per sum,
// reached by every thread).
//
// Decode is bound by the state's bytes in flight: a block issues all of its state loads at
// once and then waits, so the bytes a thread has in flight set the bandwidth. CPT = 8 gives
// 16-byte state accesses for 16-bit states (two for float32) and is used when the grid is large;
// CPT = 4 (16-column slabs) keeps twice as many blocks for small batches, where filling the
// SMs matters more. q, k, v, decay and beta of a token are loaded together, before any sum, so
// a call costs one memory round trip. Decode calls (one token, one query head per kv head) take
// one of two decode kernels below instead: decode_kernel for 16-column slabs (small grids; one
// barrier per slab, the next slab's loads issued before the current one's sums) and
// decode_wide_kernel for large grids (the state packed as loaded, 128 bytes per thread in flight
// for every state dtype).
//
// Serving on top of that (the host's semantics, src/core/serving.cpp):
// - a block's sequence gives its token range (batch row b, tokens [t0, t0 + len)), the slot it
//   reads (or zeros) and the slot its final state goes to; a PAD sequence zeroes its output
//   rows; a sequence whose indices break a rule is skipped whole and raises the error flag;
// - speculative steps store the register state after each token to that token's slot, and
//   checkpoints after every `interval` tokens: the state is rounded to the pool dtype only when
//   stored, as the host's carried path does;
// - value-major blocks are addressed element by element (the general, unvectorised path);
// - the fused L2 norm is a per-token scalar (x / |x|), so |k|^2 and |q|^2 ride along in the
//   column sums of S^T k and S^T q and scale their results afterwards (no extra barrier with
//   the delta rules); the fused gates are computed from the raw a and b in registers.
//
// Measured on the H100 (linattn bench --device cuda, reference shape, bf16 activations, in-place
// pool of 2B slots through shuffled state_indices): before decode_wide_kernel, the phased kernel
// ran pool decode at B = 64 f32 in 111.9 us = 85% of copy bandwidth against 100.9 us dense.
// Nsight Compute on the two (2026-11-22) showed 8.3x the local-memory (spill) requests in the
// serving instance (819k against 98k) and 20% more instructions, at the same occupancy; the
// wide decode kernel (72 registers, 0-4 bytes of spill for float32 states) runs the same call
// in about 102 us. Dropped earlier: resident blocks walking the items and resolving the next
// item's sequence during the current state loads (120 / 459 us for f32, slower than one block
// per item), and 72 registers for the phased serving instances (no spills, 7 blocks/SM: within
// noise).
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "core/backend.hpp"
#include "core/serving_params.hpp"
#include "cuda/cuda_common.cuh"
#include "cuda/serving_flag.cuh"

namespace linattn::detail::cuda::recurrent {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kColLanes = 4;
constexpr int kRowLanes = 32 / kColLanes;
constexpr int kRowsPerPass = kRowLanes * kWarps;  // key rows covered by one register row
constexpr int kMaxRowsPerThread = 16;             // d_k <= 512
// Grids of at least this many 32-column slabs take CPT = 8 (16 per SM on an H100: enough
// blocks to fill every SM several times over).
constexpr int64_t kWideSlabMinBlocks = 2048;

// ---- The call a kernel runs -------------------------------------------------------------------

template <class Call>
inline constexpr bool kServing = std::is_same_v<Call, LinearAttentionServing>;

LINATTN_HD const LinearAttentionParams& params_of(const LinearAttentionParams& p) { return p; }
LINATTN_HD const LinearAttentionParams& params_of(const LinearAttentionServing& s) { return s.p; }

// The pool a serving call reads initial states from: past_state, or present_state itself when
// a pool has no past_state (the in-place pool). Without a pool, rows come from past_state.
struct StateView {
  const void* base;
  linattn_dtype dtype;
  int64_t sb, sh, sk;
};

LINATTN_HD StateView read_view(const LinearAttentionServing& s) {
  const LinearAttentionParams& p = s.p;
  if (s.ix.pool && !s.ix.has_past)
    return {p.present, p.present_dtype, p.pres_sb, p.pres_sh, p.pres_sk};
  return {p.past, p.past_dtype, p.past_sb, p.past_sh, p.past_sk};
}

// Reading and writing the same slot of the same memory (nothing moves for an empty sequence).
LINATTN_HD bool reads_written_pool(const LinearAttentionServing& s) {
  return (s.ix.pool && !s.ix.has_past) || s.p.in_place;
}

__device__ __forceinline__ float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }
__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// g = -exp(A_log[h]) * softplus(a + dt_bias[h]) from the raw projection a (fused gating).
__device__ __forceinline__ float fused_gate(const LinearAttentionServing& c, int h, float a) {
  const float A = ld_rt(c.A_log, h * c.A_log_s, c.A_log_dtype);
  const float bias = c.dt_bias != nullptr ? ld_rt(c.dt_bias, h * c.dt_bias_s, c.dt_bias_dtype) : 0.f;
  return -expf(A) * softplus(a + bias);
}

// The decode kernels' per-row decay factors: a_i = exp(g_i) for the thread's key rows (one
// value for all rows with per-head decay, 1 without gating). With fused gating (serving) g is
// the raw projection and a = exp(-exp(A_log) softplus(g + dt_bias)), gate_a = A_log[h] and
// gate_bias = dt_bias[h] read by the caller.
template <bool SV, int RPT, class Call>
__device__ __forceinline__ void decay_factors(const Call& c, const LinearAttentionParams& p,
                                              const float (&g)[RPT], float gate_a, float gate_bias,
                                              float (&a)[RPT]) {
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    if (!p.gated) {
      a[i] = 1.f;
    } else if (p.decay_per_key_dim || i == 0) {
      float gi = g[i];
      if constexpr (SV) {
        if (c.fused_gating) gi = -expf(gate_a) * softplus(gi + gate_bias);  // raw a
      }
      a[i] = expf(gi);
    } else {
      a[i] = a[0];
    }
  }
}

// What a block or work item of a serving call does (decided by its sequence's indices).
enum : int { kItemRun = 0, kItemPad = 1, kItemSkip = 2 };

// One sequence of a serving call as a kernel uses it, for kv head h: its tokens, and the
// element offsets of the state block it reads (-1 = zeros) and of the one its final state goes
// to (-1 = none: speculative, whose states go to per-token slots, or an empty sequence on its
// own slot, where nothing moves).
struct BlockSequence {
  int64_t n, b, t0, len, read_blk, write_blk;
  int item;
};

__device__ __forceinline__ BlockSequence resolve_block(const LinearAttentionServing& c, int64_t n,
                                                       int h) {
  const LinearAttentionParams& p = c.p;
  BlockSequence s{n, 0, 0, 0, -1, -1, kItemSkip};
  ResolvedSequence r;
  if (!resolve_sequence(c.ix, n, &r)) return s;
  s.b = r.b;
  s.t0 = r.t0;
  s.len = r.len;
  s.item = r.pad ? kItemPad : kItemRun;
  if (r.pad) return s;
  const StateView rv = read_view(c);
  if (r.read >= 0 && rv.base != nullptr) s.read_blk = r.read * rv.sb + h * rv.sh;
  const bool nothing_moves = r.len == 0 && r.read == r.write && reads_written_pool(c);
  if (!c.ix.spec && r.write >= 0 && !nothing_moves) s.write_blk = r.write * p.pres_sb + h * p.pres_sh;
  return s;
}

// ---- The general (phased) kernel --------------------------------------------------------------

// out[j] = sum_i S[i][j] x[i] over this thread's rows: its partial of S^T x.
template <int RPT, int CPT>
__device__ __forceinline__ void rows_dot(const float S[RPT][CPT], const float x[RPT], float out[CPT]) {
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
    float s = 0.f;
#pragma unroll
    for (int i = 0; i < RPT; ++i) s = fmaf(S[i][j], x[i], s);
    out[j] = s;
  }
}

// Sum over all key rows of the block for this thread's CPT columns; every thread gets the
// sums. red is one of two buffers used alternately: a buffer is rewritten only after the
// barrier of the next sum, which every reader of its previous contents has passed. With EXTRA,
// `extra` (a per-thread partial over the thread's rows, the same in every column lane) is
// summed over the rows as well, in slot kColLanes * CPT of the buffer.
template <int CPT, int W, bool EXTRA>
__device__ __forceinline__ void column_sum(float part[CPT], float& extra, float (*red)[W], int warp,
                                           int rl, int cl) {
  static_assert(W >= kColLanes * CPT + (EXTRA ? 1 : 0), "reduction buffer too small");
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
#pragma unroll
    for (int off = kColLanes; off < 32; off <<= 1) part[j] += __shfl_xor_sync(0xffffffffu, part[j], off);
  }
  if constexpr (EXTRA) {
#pragma unroll
    for (int off = kColLanes; off < 32; off <<= 1) extra += __shfl_xor_sync(0xffffffffu, extra, off);
  }
  if (rl == 0) {
#pragma unroll
    for (int j = 0; j < CPT; ++j) red[warp][cl * CPT + j] = part[j];
    if constexpr (EXTRA) {
      if (cl == 0) red[warp][kColLanes * CPT] = extra;
    }
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += red[w][cl * CPT + j];
    part[j] = s;
  }
  if constexpr (EXTRA) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += red[w][kColLanes * CPT];
    extra = s;
  }
}

template <int CPT>
__device__ __forceinline__ void ld_state(const void* base, int64_t at, linattn_dtype t, float* out) {
  if constexpr (CPT == 8) ld8_rt(base, at, t, out);
  else ld4_rt(base, at, t, out);
}

template <int CPT>
__device__ __forceinline__ void st_state(void* base, int64_t at, linattn_dtype t, const float* x) {
  if constexpr (CPT == 8) st8_rt(base, at, t, x);
  else st4_rt(base, at, t, x);
}

// The thread's part of a state block at element offset `blk` (slot and head applied): key row
// row[i], value column c0 + j at blk + row[i] * sk + c0 + j, or blk + (c0 + j) * sk + row[i]
// when value-major (vm, FIXED == false only). base == nullptr reads zeros.
template <int RPT, int CPT, bool FIXED>
__device__ __forceinline__ void load_block(float S[RPT][CPT], const void* base, linattn_dtype t,
                                           int64_t blk, int64_t sk, bool vm, int c0,
                                           const int row[RPT], const bool row_ok[RPT],
                                           const bool col_ok[CPT]) {
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
#pragma unroll
    for (int j = 0; j < CPT; ++j) S[i][j] = 0.f;
    if (base != nullptr && row_ok[i]) {
      if (FIXED) {
        ld_state<CPT>(base, blk + row[i] * sk + c0, t, S[i]);
      } else {
#pragma unroll
        for (int j = 0; j < CPT; ++j)
          if (col_ok[j])
            S[i][j] = ld_rt(base, blk + (vm ? (c0 + j) * sk + row[i] : row[i] * sk + c0 + j), t);
      }
    }
  }
}

template <int RPT, int CPT, bool FIXED>
__device__ __forceinline__ void store_block(const float S[RPT][CPT], void* base, linattn_dtype t,
                                            int64_t blk, int64_t sk, bool vm, int c0,
                                            const int row[RPT], const bool row_ok[RPT],
                                            const bool col_ok[CPT]) {
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    if (!row_ok[i]) continue;
    if (FIXED) {
      st_state<CPT>(base, blk + row[i] * sk + c0, t, S[i]);
    } else {
#pragma unroll
      for (int j = 0; j < CPT; ++j)
        if (col_ok[j]) st_rt(base, blk + (vm ? (c0 + j) * sk + row[i] : row[i] * sk + c0 + j), t, S[i][j]);
    }
  }
}

// RPT: register rows per thread (d_k <= RPT * 32). CPT: columns per thread (4 or 8). FIXED:
// d_k == RPT * 32, d_v a multiple of the slab and the states CPT-element aligned (key-major),
// so no guards and vector state accesses. Grid: sequences x H_kv x slabs.
template <int RPT, int CPT, bool FIXED, linattn_dtype AT, class Call>
__global__ void __launch_bounds__(kThreads, FIXED ? 8 : 1)
    recurrent_kernel(const __grid_constant__ Call c, int nslab) {
  constexpr bool SV = kServing<Call>;
  const LinearAttentionParams& p = params_of(c);
  constexpr int kSlab = kColLanes * CPT;
  // Serving: one more slot carries |k|^2 or |q|^2 through the column sums.
  constexpr int kRedW = SV ? kSlab + 1 : kSlab;
  __shared__ float red[2][kWarps][kRedW];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cl = lane % kColLanes, rl = lane / kColLanes;
  // The grid has fewer than 2^31 blocks (checked at launch): 32-bit division is enough.
  const uint32_t blk = blockIdx.x;
  const int slab = static_cast<int>(blk % static_cast<uint32_t>(nslab));
  const uint32_t bh = blk / static_cast<uint32_t>(nslab);
  const int h = static_cast<int>(bh % static_cast<uint32_t>(p.Hkv));
  const int64_t n = bh / static_cast<uint32_t>(p.Hkv);  // batch row (dense) or sequence
  const int dk = FIXED ? RPT * kRowsPerPass : p.dk;
  const int dv = p.dv;
  const int c0 = slab * kSlab + cl * CPT;
  const int G = p.q_per_kv();

  int row[RPT];
  bool row_ok[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    row[i] = i * kRowsPerPass + warp * kRowLanes + rl;
    row_ok[i] = FIXED || row[i] < dk;
  }
  bool col_ok[CPT];
#pragma unroll
  for (int j = 0; j < CPT; ++j) col_ok[j] = FIXED || c0 + j < dv;

  // Token range and initial state: dense row n, all T tokens, from past_state (or zeros).
  int64_t T = p.T;
  const void* read_base = p.past;
  linattn_dtype read_dtype = p.past_dtype;
  int64_t read_blk = n * p.past_sb + h * p.past_sh, read_sk = p.past_sk;
  bool vm = false;
  // Serving: the block's sequence, resolved by thread 0 and kept in shared memory rather than in
  // registers (the FIXED instances run at 64 registers; these values are needed once per token).
  __shared__ std::conditional_t<SV, BlockSequence, char> seq;
  if constexpr (SV) {
    // Before any other memory access: a sequence that breaks an index rule is skipped whole.
    if (tid == 0) seq = resolve_block(c, n, h);
    __syncthreads();
    if (seq.item == kItemSkip) {
      if (tid == 0 && h == 0 && slab == 0) raise_serving_error(c.ix.error_flag, n);
      return;
    }
    T = seq.len;
    if (seq.item == kItemPad) {  // zero output rows, nothing else
      if (warp == 0 && rl == 0) {
        const int64_t b = seq.b;
        for (int64_t t = seq.t0; t < seq.t0 + T; ++t)
          for (int jq = 0; jq < G; ++jq) {
            const int64_t obase =
                b * p.o_sb + t * p.o_st + static_cast<int64_t>(p.output_head(h, jq)) * dv + c0;
#pragma unroll
            for (int j = 0; j < CPT; ++j)
              if (col_ok[j]) st<AT>(p.out, obase + j, 0.f);
          }
      }
      return;
    }
    const StateView rv = read_view(c);
    read_base = seq.read_blk >= 0 ? rv.base : nullptr;
    read_dtype = rv.dtype;
    read_blk = seq.read_blk;
    read_sk = rv.sk;
    vm = !FIXED && c.value_major;
  }

  // State slab in registers (zeros without an initial state).
  float S[RPT][CPT];
  load_block<RPT, CPT, FIXED>(S, read_base, read_dtype, read_blk, read_sk, vm, c0, row, row_ok,
                              col_ok);

  const int kh = p.key_head(h);
  int buf = 0;
  for (int64_t tl = 0; tl < T; ++tl) {
    int64_t b = n, t = tl;
    if constexpr (SV) {
      b = seq.b;
      t = seq.t0 + tl;
    }
    // Every per-token input up front: one round trip, overlapping the state loads on the first.
    float kr[RPT], qr[RPT], vc[CPT];
    const int64_t kbase = b * p.k_sb + t * p.k_st + static_cast<int64_t>(kh) * dk;
    const int64_t qrow = b * p.q_sb + t * p.q_st;
    const int64_t q0 = qrow + static_cast<int64_t>(p.query_head(h, 0)) * dk;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      kr[i] = row_ok[i] ? ld<AT>(p.k, kbase + row[i]) : 0.f;
      qr[i] = row_ok[i] ? ld<AT>(p.q, q0 + row[i]) : 0.f;
    }
    const int64_t vbase = b * p.v_sb + t * p.v_st + static_cast<int64_t>(h) * dv + c0;
#pragma unroll
    for (int j = 0; j < CPT; ++j) vc[j] = col_ok[j] ? ld<AT>(p.v, vbase + j) : 0.f;
    const int64_t gbase = b * p.g_sb + t * p.g_st;
    float a_head = 1.f;
    if (p.gated && !p.decay_per_key_dim) {
      float g = ld<AT>(p.decay, gbase + h);
      if constexpr (SV) {
        if (c.fused_gating) g = fused_gate(c, h, g);  // decay holds raw a
      }
      a_head = expf(g);
    }
    float beta =
        p.delta ? ld<AT>(p.beta, b * p.beta_sb + t * p.beta_st + (p.beta_shared ? 0 : h)) : 0.f;
    if constexpr (SV) {
      if (c.fused_gating) beta = sigmoid(beta);  // beta holds raw b
    }

    // 1. gated, gated_delta: S <- exp(g) S (scalar g, or row i scaled by exp(g[i])).
    if (p.gated) {
      if (p.decay_per_key_dim) {
#pragma unroll
        for (int i = 0; i < RPT; ++i) {
          const float a = row_ok[i] ? expf(ld<AT>(p.decay, gbase + static_cast<int64_t>(h) * dk + row[i])) : 1.f;
#pragma unroll
          for (int j = 0; j < CPT; ++j) S[i][j] *= a;
        }
      } else {
#pragma unroll
        for (int i = 0; i < RPT; ++i)
#pragma unroll
          for (int j = 0; j < CPT; ++j) S[i][j] *= a_head;
      }
    }

    // Serving, fused L2 norm: |k|^2 over the key rows (a partial per thread).
    float kk = 0.f;
    if constexpr (SV) {
#pragma unroll
      for (int i = 0; i < RPT; ++i) kk = fmaf(kr[i], kr[i], kk);
    }

    // 2. delta, gated_delta: r = S^T k on the decayed S, u = beta (v - r). 3. otherwise u = v.
    float u[CPT];
    if (p.delta) {
      float rs[CPT];
      rows_dot<RPT, CPT>(S, kr, rs);
      column_sum<CPT, kRedW, SV>(rs, kk, red[buf], warp, rl, cl);
      buf ^= 1;
      if constexpr (SV) {
        if (c.qk_l2norm) {  // r = S^T k / |k|
          const float ik = rsqrtf(kk + c.qk_l2norm_eps);
#pragma unroll
          for (int j = 0; j < CPT; ++j) rs[j] *= ik;
#pragma unroll
          for (int i = 0; i < RPT; ++i) kr[i] *= ik;
        }
      }
#pragma unroll
      for (int j = 0; j < CPT; ++j) u[j] = beta * (vc[j] - rs[j]);
    } else {
      if constexpr (SV) {
        if (c.qk_l2norm) {  // no sum to ride along: |k| on its own
          float none[CPT];
#pragma unroll
          for (int j = 0; j < CPT; ++j) none[j] = 0.f;
          column_sum<CPT, kRedW, true>(none, kk, red[buf], warp, rl, cl);
          buf ^= 1;
          const float ik = rsqrtf(kk + c.qk_l2norm_eps);
#pragma unroll
          for (int i = 0; i < RPT; ++i) kr[i] *= ik;
        }
      }
#pragma unroll
      for (int j = 0; j < CPT; ++j) u[j] = vc[j];
    }
    // S <- S + k u^T
#pragma unroll
    for (int i = 0; i < RPT; ++i)
#pragma unroll
      for (int j = 0; j < CPT; ++j) S[i][j] = fmaf(kr[i], u[j], S[i][j]);

    // Serving: the state after this token to its speculative slot, or to a checkpoint slot
    // after every `interval` tokens (rounded to the pool dtype here only).
    if constexpr (SV) {
      int64_t slot = -1;
      if (c.ix.spec) {
        slot = c.ix.state_indices.at(seq.n, tl);
      } else if (c.ix.ckpt_count > 0 && (tl + 1) % c.ix.ckpt_interval == 0) {
        const int64_t j = (tl + 1) / c.ix.ckpt_interval;
        if (j <= c.ix.ckpt_count) slot = c.ix.checkpoint_indices.at(seq.n, j - 1);
      }
      if (slot >= 0 && p.present != nullptr)
        store_block<RPT, CPT, FIXED>(S, p.present, p.present_dtype, slot * p.pres_sb + h * p.pres_sh,
                                     p.pres_sk, vm, c0, row, row_ok, col_ok);
    }

    // 4. o = scale * S^T q for every output head that reads this state; the next head's q is
    // loaded before this head's sum so that its latency hides behind the barrier.
    for (int jq = 0; jq < G; ++jq) {
      float o[CPT];
      rows_dot<RPT, CPT>(S, qr, o);
      float qq = 0.f;
      if constexpr (SV) {
#pragma unroll
        for (int i = 0; i < RPT; ++i) qq = fmaf(qr[i], qr[i], qq);
      }
      if (jq + 1 < G) {
        const int64_t qn = qrow + static_cast<int64_t>(p.query_head(h, jq + 1)) * dk;
#pragma unroll
        for (int i = 0; i < RPT; ++i) qr[i] = row_ok[i] ? ld<AT>(p.q, qn + row[i]) : 0.f;
      }
      column_sum<CPT, kRedW, SV>(o, qq, red[buf], warp, rl, cl);
      buf ^= 1;
      if constexpr (SV) {
        if (c.qk_l2norm) {  // o = S^T q / |q|
          const float iq = rsqrtf(qq + c.qk_l2norm_eps);
#pragma unroll
          for (int j = 0; j < CPT; ++j) o[j] *= iq;
        }
      }
      if (warp == 0 && rl == 0) {
        const int64_t obase =
            b * p.o_sb + t * p.o_st + static_cast<int64_t>(p.output_head(h, jq)) * dv + c0;
#pragma unroll
        for (int j = 0; j < CPT; ++j)
          if (col_ok[j]) st<AT>(p.out, obase + j, p.scale * o[j]);
      }
    }
  }

  // present_state: each element is written by the thread that read it, so present may alias
  // past (and a sequence may write the slot it read).
  if (p.present == nullptr) return;
  int64_t write_blk = n * p.pres_sb + h * p.pres_sh;
  if constexpr (SV) {
    write_blk = seq.write_blk;
    if (write_blk < 0) return;
  }
  store_block<RPT, CPT, FIXED>(S, p.present, p.present_dtype, write_blk, p.pres_sk, vm, c0, row,
                               row_ok, col_ok);
}

// ---- The decode (T = 1) kernel ----------------------------------------------------------------
//
// With a single token the two column sums fold into one: with a_i the decay of key row i (1
// without gating), S' = diag(a) S + k u^T gives
//   r = S^T (a o k),  u = beta (v - r) (or v),  o = S'^T q = S^T (a o q) + (k . q) u,
// so S^T (a o k), S^T (a o q) and k . q are reduced together behind one barrier (serving: with
// |k|^2 and |q|^2 beside them; with k^ = k / |k|, q^ = q / |q| the same formulas give
// r = S^T (a o k) / |k|, o = S^T (a o q) / |q| + (k . q) u / (|k| |q|), S' = diag(a) S + k^ u^T).
// The block is persistent: it walks slabs w, w + grid, ... and issues the next slab's state, q,
// k, v, decay and beta loads before the current slab's sums, so the memory pipe stays busy
// while the block computes (the phased kernel above leaves it idle during its sums). The state
// stays packed in registers as loaded (half the registers for 16-bit states) and is unpacked at
// use; the unpacking is exact, so the result rounds the state once, as the general kernel does.
template <linattn_dtype PT>
__host__ __device__ constexpr int state_bytes() {
  return PT == LINATTN_FLOAT32 ? 4 : 2;
}

template <int RPT, int CPT, linattn_dtype PT>
struct DecodeInputs {
  static constexpr int kWords = CPT * state_bytes<PT>() / 4;
  uint32_t s[RPT][kWords];
  float k[RPT], q[RPT], g[RPT], v[CPT];
  float beta;
  float gate_a, gate_bias;  // serving, fused gating: A_log[h], dt_bias[h]
};

template <linattn_dtype PT>
__device__ __forceinline__ float unpack_state(const uint32_t* w, int j) {
  if constexpr (PT == LINATTN_FLOAT32) {
    return __uint_as_float(w[j]);
  } else {
    const uint32_t x = w[j >> 1];
    if constexpr (PT == LINATTN_BFLOAT16) {
      return __uint_as_float((j & 1) ? (x & 0xffff0000u) : (x << 16));
    } else {
      return __half2float(__ushort_as_half(static_cast<uint16_t>((j & 1) ? (x >> 16) : (x & 0xffffu))));
    }
  }
}

struct DecodeSlab {
  int64_t b;
  int h, c0;
  // Serving only: element offsets of the read and written blocks (slot and head applied; read
  // -1 = zeros) and what the item does.
  int64_t read_blk, write_blk;
  int item;
};

template <class Call>
__device__ __forceinline__ DecodeSlab decode_slab(const Call& c, uint32_t w, uint32_t nslab,
                                                  int slab_cols, int cl, int cpt) {
  const LinearAttentionParams& p = params_of(c);
  DecodeSlab d;
  const uint32_t bh = w / nslab;
  d.c0 = static_cast<int>(w - bh * nslab) * slab_cols + cl * cpt;
  d.h = static_cast<int>(bh % static_cast<uint32_t>(p.Hkv));
  d.b = bh / static_cast<uint32_t>(p.Hkv);
  if constexpr (kServing<Call>) {
    // Unpacked batch rows only (the launcher's condition): sequence n is row n, one token.
    const BlockSequence q = resolve_block(c, d.b, d.h);
    d.item = q.item;
    d.read_blk = q.read_blk;
    d.write_blk = q.write_blk;
    // A speculative step of one token stores its state to the token's slot.
    if (q.item == kItemRun && c.ix.spec)
      d.write_blk = c.ix.state_indices.at(d.b, 0) * p.pres_sb + d.h * p.pres_sh;
  }
  return d;
}

// Where a decode slab's state is read: the base (nullptr: zeros), the element offset of its
// (sequence or slot, head) block and the row stride.
template <class Call>
__device__ __forceinline__ void decode_state_source(const Call& c, const DecodeSlab& d,
                                                    const void** base, int64_t* blk, int64_t* sk) {
  if constexpr (kServing<Call>) {
    const StateView rv = read_view(c);
    *base = d.read_blk >= 0 ? rv.base : nullptr;
    *blk = d.read_blk;
    *sk = rv.sk;
  } else {
    const LinearAttentionParams& p = params_of(c);
    *base = p.past;
    *blk = d.b * p.past_sb + d.h * p.past_sh;
    *sk = p.past_sk;
  }
}

template <int RPT, int CPT, linattn_dtype AT, linattn_dtype PT, class Call>
__device__ __forceinline__ void decode_load(const Call& c, const DecodeSlab& d, const int row[RPT],
                                            DecodeInputs<RPT, CPT, PT>& in) {
  constexpr bool SV = kServing<Call>;
  const LinearAttentionParams& p = params_of(c);
  constexpr int dk = RPT * kRowsPerPass;
  constexpr int kWords = DecodeInputs<RPT, CPT, PT>::kWords;
  const void* sbase;
  int64_t sblk, ssk;
  decode_state_source(c, d, &sbase, &sblk, &ssk);
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    if (sbase != nullptr) {
      const char* at = static_cast<const char*>(sbase) + (sblk + d.c0 + row[i] * ssk) * state_bytes<PT>();
      if constexpr (kWords % 4 == 0) {
#pragma unroll
        for (int v = 0; v < kWords / 4; ++v) {
          const uint4 u = reinterpret_cast<const uint4*>(at)[v];
          in.s[i][4 * v] = u.x; in.s[i][4 * v + 1] = u.y; in.s[i][4 * v + 2] = u.z; in.s[i][4 * v + 3] = u.w;
        }
      } else {
        const uint2 u = *reinterpret_cast<const uint2*>(at);
        in.s[i][0] = u.x; in.s[i][1] = u.y;
      }
    } else {
#pragma unroll
      for (int v = 0; v < kWords; ++v) in.s[i][v] = 0u;  // 0 bits are 0.0 in every state dtype
    }
  }
  if constexpr (SV) {
    if (d.item != kItemRun) return;  // a PAD or skipped sequence reads nothing
  }
  const int64_t kbase = d.b * p.k_sb + static_cast<int64_t>(p.key_head(d.h)) * dk;
  const int64_t qbase = d.b * p.q_sb + static_cast<int64_t>(p.query_head(d.h, 0)) * dk;
  const int64_t gbase = d.b * p.g_sb;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    in.k[i] = ld<AT>(p.k, kbase + row[i]);
    in.q[i] = ld<AT>(p.q, qbase + row[i]);
    // Per-head decay: one value, kept in g[0].
    in.g[i] = !p.gated ? 0.f
              : p.decay_per_key_dim ? ld<AT>(p.decay, gbase + static_cast<int64_t>(d.h) * dk + row[i])
              : i == 0              ? ld<AT>(p.decay, gbase + d.h)
                                    : 0.f;
  }
  const int64_t vbase = d.b * p.v_sb + static_cast<int64_t>(d.h) * p.dv + d.c0;
#pragma unroll
  for (int j = 0; j < CPT; ++j) in.v[j] = ld<AT>(p.v, vbase + j);
  in.beta = p.delta ? ld<AT>(p.beta, d.b * p.beta_sb + (p.beta_shared ? 0 : d.h)) : 0.f;
  if constexpr (SV) {
    // Fused gating: A_log[h] and dt_bias[h] beside the raw a and b, all loads issued before any
    // use (the gates are computed with the slab's sums, not here, where a use would wait for
    // the prefetched loads).
    if (c.fused_gating) {
      in.gate_a = ld_rt(c.A_log, d.h * c.A_log_s, c.A_log_dtype);
      in.gate_bias = c.dt_bias != nullptr ? ld_rt(c.dt_bias, d.h * c.dt_bias_s, c.dt_bias_dtype) : 0.f;
    }
  }
}

// Four resident blocks of 128 threads: 128 registers hold two slabs' packed state (the
// current and the prefetched one) at CPT = 4 for every state dtype without spilling (95 to 116
// registers on sm_90).
//
// Used for the 16-column slabs (grids below kWideSlabMinBlocks 32-column slabs) only. The same
// kernel at CPT = 8 (16-bit states; float32 would spill at 128 registers) was measured on the
// H100 for the reference decode shape with bf16 state: 63.2 us at B = 64 (the phased kernel:
// 69.5) but 279.0 us at B = 256 (phased: 267.8), so large grids do not take it (they take
// decode_wide_kernel below).
constexpr int kDecodeBlocksPerSm = 4;

// Requires T == 1, one query head per kv head, d_k == RPT * 32, d_v a multiple of the slab and
// CPT-aligned states (the FIXED conditions of the general kernel); serving: unpacked batch rows
// (one token per sequence), key-major, no checkpoints.
template <int RPT, int CPT, linattn_dtype AT, linattn_dtype PT, class Call>
__global__ void __launch_bounds__(kThreads, kDecodeBlocksPerSm)
    decode_kernel(const __grid_constant__ Call c, uint32_t nslab, uint32_t nwork) {
  constexpr bool SV = kServing<Call>;
  const LinearAttentionParams& p = params_of(c);
  constexpr int kSlab = kColLanes * CPT;
  constexpr int kSums = 2 * CPT;  // S^T (a o k) and S^T (a o q) for the thread's columns
  // Scalars reduced beside them: k . q (serving: and |k|^2, |q|^2).
  constexpr int kScalars = SV ? 3 : 1;
  // [buffer][warp][column lane x kSums, then the scalars]
  __shared__ float red[2][kWarps][kColLanes * kSums + kScalars];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cl = lane % kColLanes, rl = lane / kColLanes;
  int row[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) row[i] = i * kRowsPerPass + warp * kRowLanes + rl;

  uint32_t w = blockIdx.x;
  DecodeSlab cur_slab = decode_slab(c, w, nslab, kSlab, cl, CPT);
  DecodeInputs<RPT, CPT, PT> cur;
  decode_load<RPT, CPT, AT, PT>(c, cur_slab, row, cur);
  int buf = 0;
  for (; w < nwork; w += gridDim.x) {
    // Next slab's loads first, so that they are in flight during this slab's sums and stores
    // (the branch is uniform over the block; after the last slab nothing is loaded).
    const uint32_t wn = w + gridDim.x;
    DecodeSlab next_slab = cur_slab;
    DecodeInputs<RPT, CPT, PT> next = cur;
    if (wn < nwork) {
      next_slab = decode_slab(c, wn, nslab, kSlab, cl, CPT);
      decode_load<RPT, CPT, AT, PT>(c, next_slab, row, next);
    }

    if constexpr (SV) {
      // A PAD sequence: zero output; a skipped one: the flag, raised once (uniform branches).
      if (cur_slab.item != kItemRun) {
        if (cur_slab.item == kItemPad) {
          if (warp == 0 && rl == 0) {
            const int64_t obase = cur_slab.b * p.o_sb + static_cast<int64_t>(p.output_head(cur_slab.h, 0)) * p.dv + cur_slab.c0;
#pragma unroll
            for (int j = 0; j < CPT; ++j) st<AT>(p.out, obase + j, 0.f);
          }
        } else if (tid == 0 && cur_slab.h == 0 && cur_slab.c0 == 0) {
          raise_serving_error(c.ix.error_flag, cur_slab.b);
        }
        cur = next;
        cur_slab = next_slab;
        continue;
      }
    }

    float a[RPT];
    decay_factors<SV>(c, p, cur.g, cur.gate_a, cur.gate_bias, a);
    float part[kSums + kScalars];
#pragma unroll
    for (int j = 0; j < kSums + kScalars; ++j) part[j] = 0.f;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const float ka = a[i] * cur.k[i], qa = a[i] * cur.q[i];
#pragma unroll
      for (int j = 0; j < CPT; ++j) {
        const float sv = unpack_state<PT>(cur.s[i], j);
        part[j] = fmaf(sv, ka, part[j]);
        part[CPT + j] = fmaf(sv, qa, part[CPT + j]);
      }
      part[kSums] = fmaf(cur.k[i], cur.q[i], part[kSums]);
      if constexpr (SV) {
        part[kSums + 1] = fmaf(cur.k[i], cur.k[i], part[kSums + 1]);
        part[kSums + 2] = fmaf(cur.q[i], cur.q[i], part[kSums + 2]);
      }
    }
#pragma unroll
    for (int j = 0; j < kSums + kScalars; ++j) {
#pragma unroll
      for (int off = kColLanes; off < 32; off <<= 1) part[j] += __shfl_xor_sync(0xffffffffu, part[j], off);
    }
    if (rl == 0) {
#pragma unroll
      for (int j = 0; j < kSums; ++j) red[buf][warp][cl * kSums + j] = part[j];
      if (cl == 0) {
#pragma unroll
        for (int j = 0; j < kScalars; ++j) red[buf][warp][kColLanes * kSums + j] = part[kSums + j];
      }
    }
    // One barrier per slab; a buffer is rewritten two slabs later, after the next slab's
    // barrier, which every reader of it has passed.
    __syncthreads();
#pragma unroll
    for (int j = 0; j < kSums; ++j) {
      float s = 0.f;
#pragma unroll
      for (int ww = 0; ww < kWarps; ++ww) s += red[buf][ww][cl * kSums + j];
      part[j] = s;
    }
    float kq = 0.f;
#pragma unroll
    for (int ww = 0; ww < kWarps; ++ww) kq += red[buf][ww][kColLanes * kSums];
    // Serving: 1/|k|, 1/|q| (1 without the fused L2 norm) and the gate beta.
    float ik = 1.f, iq = 1.f, beta = cur.beta;
    if constexpr (SV) {
      if (c.qk_l2norm) {
        float kk = 0.f, qq = 0.f;
#pragma unroll
        for (int ww = 0; ww < kWarps; ++ww) {
          kk += red[buf][ww][kColLanes * kSums + 1];
          qq += red[buf][ww][kColLanes * kSums + 2];
        }
        ik = rsqrtf(kk + c.qk_l2norm_eps);
        iq = rsqrtf(qq + c.qk_l2norm_eps);
      }
      if (c.fused_gating) beta = sigmoid(beta);  // raw b
    }
    buf ^= 1;

    float u[CPT];
    if constexpr (SV) {
#pragma unroll
      for (int j = 0; j < CPT; ++j) u[j] = p.delta ? beta * (cur.v[j] - ik * part[j]) : cur.v[j];
    } else {
#pragma unroll
      for (int j = 0; j < CPT; ++j) u[j] = p.delta ? cur.beta * (cur.v[j] - part[j]) : cur.v[j];
    }
    if (warp == 0 && rl == 0) {
      const int64_t obase = cur_slab.b * p.o_sb + static_cast<int64_t>(p.output_head(cur_slab.h, 0)) * p.dv + cur_slab.c0;
      if constexpr (SV) {
        const float kqn = kq * ik * iq;
#pragma unroll
        for (int j = 0; j < CPT; ++j) st<AT>(p.out, obase + j, p.scale * fmaf(kqn, u[j], iq * part[CPT + j]));
      } else {
#pragma unroll
        for (int j = 0; j < CPT; ++j) st<AT>(p.out, obase + j, p.scale * fmaf(kq, u[j], part[CPT + j]));
      }
    }
    if (p.present != nullptr && (!SV || cur_slab.write_blk >= 0)) {
      int64_t pres_base = cur_slab.b * p.pres_sb + cur_slab.h * p.pres_sh + cur_slab.c0;
      if constexpr (SV) pres_base = cur_slab.write_blk + cur_slab.c0;
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        const float kn = SV ? cur.k[i] * ik : cur.k[i];
        float x[CPT];
#pragma unroll
        for (int j = 0; j < CPT; ++j) x[j] = fmaf(kn, u[j], a[i] * unpack_state<PT>(cur.s[i], j));
        st_state<CPT>(p.present, pres_base + row[i] * p.pres_sk, p.present_dtype, x);
      }
    }
    cur = next;
    cur_slab = next_slab;
  }
}

// ---- The wide decode kernel (T = 1, large grids) ----------------------------------------------
//
// Large decode grids are bound by the state bytes each SM has in flight. The phased kernel at
// CPT = 8 holds 8 float32 values per key row and thread: two 16-byte loads per row for float32
// states but only one for 16-bit states, so 16-bit states had half the bytes in flight (64 KB
// per SM at 8 blocks). This kernel keeps the state packed as loaded, 8 words (two 16-byte
// accesses) per key row and thread whatever the dtype: 16 columns per thread (64-column slabs)
// for 16-bit states, 8 (32-column slabs) for float32, so every state dtype has 128 bytes per
// thread in flight at the register count of the float32 phased kernel. One block per slab (not
// persistent) with the decode kernel's folded math: S^T (a o k), S^T (a o q) and k . q behind
// one barrier. Column sums over the 8 row lanes of a warp are a reduce-scatter (each of the
// three shuffle steps halves the values a lane carries: 7 shuffles for 8 columns instead of
// 24), after which lane (rl, cl) holds one column's warp sum and writes it to shared memory.
// Thread columns: access v of a row covers slab columns v * 4 * VW + cl * VW + [0, VW) (VW = 16
// bytes of state), so each load and store instruction of a warp reads whole 32-byte sectors.
constexpr int kWideWords = 8;  // packed state words per key row and thread

template <linattn_dtype PT>
__host__ __device__ constexpr int wide_slab_cols() {
  return kColLanes * kWideWords * 4 / state_bytes<PT>();
}

// The packed state is unpacked anew in each pass over it (a group of column sums, ending in its
// shared-memory store, or a row of the final store), so that only that pass's values and
// partials are live. Left alone, the compiler unpacks every value once, right after the loads,
// and keeps them (twice the registers for 16-bit states) with the partials of all passes live
// at once, which spilled. Each pass XORs the words with a zero it reads from shared memory with a
// volatile load (the thread's own slot, written by itself at the start): neither the front end
// nor the assembler can prove that zero, merge two passes' unpacks or move a pass above its load.
__device__ __forceinline__ uint32_t pass_zero(const uint32_t* slot) {
  uint32_t z;
  asm volatile("ld.volatile.shared.u32 %0, [%1];" : "=r"(z) : "r"(smem_addr(slot)) : "memory");
  return z;
}

// x[0..7]: a lane's partials for 8 columns. Returns the sum over the warp's 8 row lanes (lane
// bits 2..4) of column rl (row lane bits 2, 1, 0 pick the upper or lower half at each step).
__device__ __forceinline__ float reduce_scatter8(float x[8], int rl) {
#pragma unroll
  for (int m = 0; m < 4; ++m) {
    const bool up = rl & 4;
    const float send = up ? x[m] : x[m + 4], keep = up ? x[m + 4] : x[m];
    x[m] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
  }
#pragma unroll
  for (int m = 0; m < 2; ++m) {
    const bool up = rl & 2;
    const float send = up ? x[m] : x[m + 2], keep = up ? x[m + 2] : x[m];
    x[m] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
  }
  const bool up = rl & 1;
  const float send = up ? x[0] : x[1], keep = up ? x[1] : x[0];
  return keep + __shfl_xor_sync(0xffffffffu, send, 4);
}

// Requires T == 1, one query head per kv head, d_k == RPT * 32, d_v a multiple of the slab,
// states aligned to 8 elements (key-major); serving: unpacked batch rows, no checkpoints.
template <int RPT, linattn_dtype AT, linattn_dtype PT, int MINB, class Call>
__global__ void __launch_bounds__(kThreads, MINB)
    decode_wide_kernel(const __grid_constant__ Call c, uint32_t nslab) {
  constexpr bool SV = kServing<Call>;
  const LinearAttentionParams& p = params_of(c);
  constexpr int kVW = 16 / state_bytes<PT>();  // columns per 16-byte access
  constexpr int kVecs = kWideWords / 4;        // 16-byte accesses per key row
  constexpr int CPT = kVecs * kVW;             // 16 (16-bit states) or 8 (float32)
  constexpr int kSlab = kColLanes * CPT;
  constexpr int kGroups = CPT / kRowLanes;     // groups of 8 columns in a reduce-scatter
  constexpr int kScalars = SV ? 3 : 1;         // k . q (serving: and |k|^2, |q|^2)
  // [warp][S^T (a o k) per slab column, S^T (a o q) per slab column, scalars]
  __shared__ __align__(16) float red[kWarps][2 * kSlab + 4];
  // v of the slab's columns: loaded by one thread per column and shared, rather than CPT values
  // per thread held in registers through the sums (the 16-bit instance spilled with them).
  __shared__ __align__(16) float vsh[kSlab];
  __shared__ uint32_t zero[kThreads];  // see pass_zero
  static_assert(kScalars <= 4, "scalar slots");
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cl = lane % kColLanes, rl = lane / kColLanes;
  int row[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) row[i] = i * kRowsPerPass + warp * kRowLanes + rl;
  zero[tid] = 0u;
  // Slab column of the thread's j-th value.
  auto col = [cl](int j) { return (j / kVW) * (kColLanes * kVW) + cl * kVW + j % kVW; };

  // d.c0 = the slab's first column (every thread resolves a serving sequence itself: the
  // index loads are the same address across the block, one transaction per warp, no barrier).
  const DecodeSlab d = decode_slab(c, blockIdx.x, nslab, kSlab, 0, 0);
  if constexpr (SV) {
    if (d.item != kItemRun) {  // uniform over the block
      if (d.item == kItemPad) {
        if (warp == 0 && rl == 0) {
          const int64_t obase = d.b * p.o_sb + static_cast<int64_t>(p.output_head(d.h, 0)) * p.dv + d.c0;
#pragma unroll
          for (int j = 0; j < CPT; ++j) st<AT>(p.out, obase + col(j), 0.f);
        }
      } else if (tid == 0 && d.h == 0 && d.c0 == 0) {
        raise_serving_error(c.ix.error_flag, d.b);
      }
      return;
    }
  }

  // Every load up front: state (packed), k, q, decay, v, beta.
  const void* sbase;
  int64_t sblk, ssk;
  decode_state_source(c, d, &sbase, &sblk, &ssk);
  uint32_t s[RPT][kWideWords];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    if (sbase != nullptr) {
      const char* at = static_cast<const char*>(sbase) + (sblk + d.c0 + row[i] * ssk) * state_bytes<PT>();
#pragma unroll
      for (int v = 0; v < kVecs; ++v) {
        const uint4 u = *reinterpret_cast<const uint4*>(at + (v * kColLanes + cl) * 16);
        s[i][4 * v] = u.x; s[i][4 * v + 1] = u.y; s[i][4 * v + 2] = u.z; s[i][4 * v + 3] = u.w;
      }
    } else {
#pragma unroll
      for (int v = 0; v < kWideWords; ++v) s[i][v] = 0u;  // 0 bits are 0.0 in every state dtype
    }
  }
  constexpr int dk = RPT * kRowsPerPass;
  const int64_t kbase = d.b * p.k_sb + static_cast<int64_t>(p.key_head(d.h)) * dk;
  const int64_t qbase = d.b * p.q_sb + static_cast<int64_t>(p.query_head(d.h, 0)) * dk;
  const int64_t gbase = d.b * p.g_sb;
  float k[RPT], q[RPT], g[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    k[i] = ld<AT>(p.k, kbase + row[i]);
    q[i] = ld<AT>(p.q, qbase + row[i]);
    g[i] = !p.gated ? 0.f
           : p.decay_per_key_dim ? ld<AT>(p.decay, gbase + static_cast<int64_t>(d.h) * dk + row[i])
           : i == 0              ? ld<AT>(p.decay, gbase + d.h)
                                 : 0.f;
  }
  if (tid < kSlab) vsh[tid] = ld<AT>(p.v, d.b * p.v_sb + static_cast<int64_t>(d.h) * p.dv + d.c0 + tid);
  float beta = p.delta ? ld<AT>(p.beta, d.b * p.beta_sb + (p.beta_shared ? 0 : d.h)) : 0.f;
  float gate_a = 0.f, gate_bias = 0.f;
  if constexpr (SV) {
    if (c.fused_gating) {
      gate_a = ld_rt(c.A_log, d.h * c.A_log_s, c.A_log_dtype);
      gate_bias = c.dt_bias != nullptr ? ld_rt(c.dt_bias, d.h * c.dt_bias_s, c.dt_bias_dtype) : 0.f;
    }
  }

  float a[RPT];
  decay_factors<SV>(c, p, g, gate_a, gate_bias, a);

  // Column partials of S^T (a o k), then of S^T (a o q), 8 columns at a time (8 partials live),
  // reduce-scattered over the row lanes.
#pragma unroll
  for (int sum = 0; sum < 2; ++sum) {
#pragma unroll
    for (int gr = 0; gr < kGroups; ++gr) {
      float part[8];
#pragma unroll
      for (int m = 0; m < 8; ++m) part[m] = 0.f;
      const uint32_t z = pass_zero(&zero[tid]);
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        const float w = a[i] * (sum == 0 ? k[i] : q[i]);
        uint32_t x[kWideWords];
#pragma unroll
        for (int m = 0; m < kWideWords; ++m) x[m] = s[i][m] ^ z;
#pragma unroll
        for (int m = 0; m < 8; ++m) part[m] = fmaf(unpack_state<PT>(x, gr * 8 + m), w, part[m]);
      }
      red[warp][sum * kSlab + col(gr * 8 + rl)] = reduce_scatter8(part, rl);
    }
  }
  float sc[kScalars];
  sc[0] = 0.f;
#pragma unroll
  for (int i = 0; i < RPT; ++i) sc[0] = fmaf(k[i], q[i], sc[0]);
  if constexpr (SV) {
    sc[1] = sc[2] = 0.f;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      sc[1] = fmaf(k[i], k[i], sc[1]);
      sc[2] = fmaf(q[i], q[i], sc[2]);
    }
  }
#pragma unroll
  for (int j = 0; j < kScalars; ++j) {
#pragma unroll
    for (int off = kColLanes; off < 32; off <<= 1) sc[j] += __shfl_xor_sync(0xffffffffu, sc[j], off);
  }
  if (lane == 0) {
#pragma unroll
    for (int j = 0; j < kScalars; ++j) red[warp][2 * kSlab + j] = sc[j];
  }
  __syncthreads();

  // The thread's column sums (vector reads: VW consecutive slab columns per access).
  float r[CPT];
#pragma unroll
  for (int j = 0; j < CPT; ++j) r[j] = 0.f;
#pragma unroll
  for (int ww = 0; ww < kWarps; ++ww) {
#pragma unroll
    for (int j = 0; j < CPT; j += 4) {
      const float4 x = *reinterpret_cast<const float4*>(&red[ww][col(j)]);
      r[j] += x.x; r[j + 1] += x.y; r[j + 2] += x.z; r[j + 3] += x.w;
    }
  }
  float kq = 0.f;
#pragma unroll
  for (int ww = 0; ww < kWarps; ++ww) kq += red[ww][2 * kSlab];
  // Serving: 1/|k|, 1/|q| (1 without the fused L2 norm) and the gate beta.
  float ik = 1.f, iq = 1.f;
  if constexpr (SV) {
    if (c.qk_l2norm) {
      float kk = 0.f, qq = 0.f;
#pragma unroll
      for (int ww = 0; ww < kWarps; ++ww) {
        kk += red[ww][2 * kSlab + 1];
        qq += red[ww][2 * kSlab + 2];
      }
      ik = rsqrtf(kk + c.qk_l2norm_eps);
      iq = rsqrtf(qq + c.qk_l2norm_eps);
    }
    if (c.fused_gating) beta = sigmoid(beta);  // raw b
  }
  float u[CPT];
#pragma unroll
  for (int j = 0; j < CPT; j += 4) {
    const float4 x = *reinterpret_cast<const float4*>(&vsh[col(j)]);
    const float vv[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
    for (int e = 0; e < 4; ++e) u[j + e] = p.delta ? beta * (vv[e] - ik * r[j + e]) : vv[e];
  }

  if (warp == 0 && rl == 0) {
    const int64_t obase = d.b * p.o_sb + static_cast<int64_t>(p.output_head(d.h, 0)) * p.dv + d.c0;
    const float kqn = kq * ik * iq;
#pragma unroll
    for (int j = 0; j < CPT; j += 4) {
      const float4 x0 = *reinterpret_cast<const float4*>(&red[0][kSlab + col(j)]);
      const float4 x1 = *reinterpret_cast<const float4*>(&red[1][kSlab + col(j)]);
      const float4 x2 = *reinterpret_cast<const float4*>(&red[2][kSlab + col(j)]);
      const float4 x3 = *reinterpret_cast<const float4*>(&red[3][kSlab + col(j)]);
      const float o[4] = {x0.x + x1.x + x2.x + x3.x, x0.y + x1.y + x2.y + x3.y,
                          x0.z + x1.z + x2.z + x3.z, x0.w + x1.w + x2.w + x3.w};
#pragma unroll
      for (int e = 0; e < 4; ++e)
        st<AT>(p.out, obase + col(j + e), p.scale * fmaf(kqn, u[j + e], iq * o[e]));
    }
  }
  if (p.present != nullptr && (!SV || d.write_blk >= 0)) {
    int64_t pres_base = d.b * p.pres_sb + d.h * p.pres_sh + d.c0;
    if constexpr (SV) pres_base = d.write_blk + d.c0;
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      const float kn = SV ? k[i] * ik : k[i];
      const uint32_t z = pass_zero(&zero[tid]);
      uint32_t sw[kWideWords];
#pragma unroll
      for (int m = 0; m < kWideWords; ++m) sw[m] = s[i][m] ^ z;
#pragma unroll
      for (int v = 0; v < kVecs; ++v) {
        float x[kVW];
#pragma unroll
        for (int e = 0; e < kVW; ++e)
          x[e] = fmaf(kn, u[v * kVW + e], a[i] * unpack_state<PT>(sw, v * kVW + e));
        const int64_t at = pres_base + row[i] * p.pres_sk + v * kColLanes * kVW + cl * kVW;
        if constexpr (kVW == 8) st8_rt(p.present, at, p.present_dtype, x);
        else st4_rt(p.present, at, p.present_dtype, x);
      }
    }
  }
}

// ---- Launch -----------------------------------------------------------------------------------

inline bool state_vectorizable(const void* ptr, linattn_dtype t, int64_t sb, int64_t sh, int64_t sk,
                               int cols) {
  if (ptr == nullptr) return true;
  const uintptr_t bytes = (t == LINATTN_FLOAT32 ? 4 : 2) * cols;
  return reinterpret_cast<uintptr_t>(ptr) % bytes == 0 && sb % cols == 0 && sh % cols == 0 &&
         sk % cols == 0;
}

inline bool states_vectorizable(const LinearAttentionParams& p, int cols) {
  return p.dv % (kColLanes * cols) == 0 &&
         state_vectorizable(p.past, p.past_dtype, p.past_sb, p.past_sh, p.past_sk, cols) &&
         state_vectorizable(p.present, p.present_dtype, p.pres_sb, p.pres_sh, p.pres_sk, cols);
}

// What the launcher needs to know of a call beyond its dense params.
struct CallShape {
  int64_t seqs = 0;           // grid rows: batch rows (dense) or sequences (serving)
  bool fixed_ok = true;       // key-major state (value-major takes the general path)
  bool decode_ok = true;      // decode_kernel may run it (besides T == 1, one q head per kv head)
  linattn_dtype read_dtype = LINATTN_BFLOAT16;  // state dtype decode_kernel unpacks
};

inline CallShape call_shape(const LinearAttentionParams& p) {
  CallShape s;
  s.seqs = p.B;
  if (p.past != nullptr) s.read_dtype = p.past_dtype;
  return s;
}

inline CallShape call_shape(const LinearAttentionServing& c) {
  CallShape s;
  s.seqs = c.ix.N;
  s.fixed_ok = !c.value_major;
  // decode_kernel handles one token per sequence, known only without cu_seqlens.
  s.decode_ok = !c.ix.packed && !c.value_major && c.ix.ckpt_count == 0;
  const bool reads = c.ix.pool || c.ix.has_past;
  if (reads) s.read_dtype = read_view(c).dtype;
  return s;
}

template <int RPT, int CPT, bool FIXED, linattn_dtype AT, class Call>
void launch_recurrent(const Call& c, int64_t seqs, cudaStream_t s) {
  const LinearAttentionParams& p = params_of(c);
  const int nslab = (p.dv + kColLanes * CPT - 1) / (kColLanes * CPT);
  const int64_t blocks = seqs * p.Hkv * nslab;
  recurrent_kernel<RPT, CPT, FIXED, AT, Call><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(c, nslab);
}

template <int RPT, linattn_dtype AT, class Call>
void launch_fixed(const Call& c, int64_t seqs, bool wide, cudaStream_t s) {
  if (wide) launch_recurrent<RPT, 8, true, AT>(c, seqs, s);
  else launch_recurrent<RPT, 4, true, AT>(c, seqs, s);
}

template <int RPT, int CPT, linattn_dtype AT, linattn_dtype PT, class Call>
void launch_decode(const Call& c, int64_t seqs, int sms, cudaStream_t s) {
  const LinearAttentionParams& p = params_of(c);
  const int64_t nslab = p.dv / (kColLanes * CPT);
  const int64_t nwork = seqs * p.Hkv * nslab;
  const int64_t resident = static_cast<int64_t>(sms) * kDecodeBlocksPerSm;
  const int64_t grid = nwork < resident ? nwork : resident;
  decode_kernel<RPT, CPT, AT, PT, Call><<<static_cast<unsigned>(grid), kThreads, 0, s>>>(
      c, static_cast<uint32_t>(nslab), static_cast<uint32_t>(nwork));
}

// The wide decode kernel: 7 resident blocks of 128 threads (72 registers). Measured on the
// H100 (reference decode shape, bf16 activations, us; 8 / 7 / 6 blocks per SM): dense B = 256
// bf16 state 231.2 / 196.3 / 209.6, B = 64 f32 101.9 / 96.3 / -; at 8 blocks (64 registers)
// the 16-bit instances spill 76-120 bytes and the float32 serving instance 48.
constexpr int kWideDecodeBlocksPerSm = 7;

template <int RPT, linattn_dtype AT, linattn_dtype PT, int MINB = kWideDecodeBlocksPerSm, class Call>
void launch_decode_wide(const Call& c, int64_t seqs, cudaStream_t s) {
  const LinearAttentionParams& p = params_of(c);
  const int64_t nslab = p.dv / wide_slab_cols<PT>();
  decode_wide_kernel<RPT, AT, PT, MINB, Call><<<static_cast<unsigned>(seqs * p.Hkv * nslab), kThreads, 0, s>>>(
      c, static_cast<uint32_t>(nslab));
}

template <int RPT, linattn_dtype AT, class Call>
void launch_decode_wide_for_state(const Call& c, const CallShape& cs, cudaStream_t s) {
  if (cs.read_dtype == LINATTN_FLOAT16) launch_decode_wide<RPT, AT, LINATTN_FLOAT16>(c, cs.seqs, s);
  else if (cs.read_dtype == LINATTN_BFLOAT16) launch_decode_wide<RPT, AT, LINATTN_BFLOAT16>(c, cs.seqs, s);
  else launch_decode_wide<RPT, AT, LINATTN_FLOAT32>(c, cs.seqs, s);
}

inline int wide_slab_cols_rt(linattn_dtype t) {
  return t == LINATTN_FLOAT32 ? wide_slab_cols<LINATTN_FLOAT32>() : wide_slab_cols<LINATTN_BFLOAT16>();
}

// Decode with 16-column slabs. The state dtype the kernel unpacks is that of the state read;
// without one nothing is loaded and the 16-bit instance (fewer registers) serves.
template <int RPT, linattn_dtype AT, class Call>
void launch_decode_for_state(const Call& c, const CallShape& cs, int sms, cudaStream_t s) {
  if (cs.read_dtype == LINATTN_FLOAT16) launch_decode<RPT, 4, AT, LINATTN_FLOAT16>(c, cs.seqs, sms, s);
  else if (cs.read_dtype == LINATTN_BFLOAT16) launch_decode<RPT, 4, AT, LINATTN_BFLOAT16>(c, cs.seqs, sms, s);
  else launch_decode<RPT, 4, AT, LINATTN_FLOAT32>(c, cs.seqs, sms, s);
}

// Picks the kernel and its instance for a call of activation dtype AT.
template <linattn_dtype AT, class Call>
Status launch_for_act(const Call& c, int device, cudaStream_t s) {
  const LinearAttentionParams& p = params_of(c);
  const CallShape cs = call_shape(c);
  const int64_t blocks4 = cs.seqs * p.Hkv * ((p.dv + 15) / 16);
  if (blocks4 == 0) return Status::ok_status();
  if (blocks4 > 0x7fffffff) {
    return unsupported("linear_attention (cuda): sequences * kv_num_heads * ceil(d_v / 16) = " +
                       std::to_string(blocks4) + " exceeds the grid limit 2^31 - 1");
  }
  const bool fixed_dk = cs.fixed_ok && (p.dk == 128 || p.dk == 64);
  const bool wide = fixed_dk && states_vectorizable(p, 8) && cs.seqs * p.Hkv * (p.dv / 32) >= kWideSlabMinBlocks;
  if (fixed_dk && (wide || states_vectorizable(p, 4))) {
    // (The decode kernel's grid is the resident block count: it needs the SM count.)
    const bool decode1 = cs.decode_ok && p.T == 1 && p.q_per_kv() == 1;
    const bool decode = decode1 && !wide;
    if (decode1 && wide && p.dv % wide_slab_cols_rt(cs.read_dtype) == 0) {
      if (p.dk == 128) launch_decode_wide_for_state<4, AT>(c, cs, s);
      else launch_decode_wide_for_state<2, AT>(c, cs, s);
    } else if (const int sms = decode ? device_attribute<cudaDevAttrMultiProcessorCount>(device) : 0; sms > 0) {
      if (p.dk == 128) launch_decode_for_state<4, AT>(c, cs, sms, s);
      else launch_decode_for_state<2, AT>(c, cs, sms, s);
    } else if (p.dk == 128) launch_fixed<4, AT>(c, cs.seqs, wide, s);
    else launch_fixed<2, AT>(c, cs.seqs, wide, s);
  } else {
    const int rpt = (p.dk + kRowsPerPass - 1) / kRowsPerPass;
    if (rpt <= 1) launch_recurrent<1, 4, false, AT>(c, cs.seqs, s);
    else if (rpt <= 2) launch_recurrent<2, 4, false, AT>(c, cs.seqs, s);
    else if (rpt <= 4) launch_recurrent<4, 4, false, AT>(c, cs.seqs, s);
    else if (rpt <= 8) launch_recurrent<8, 4, false, AT>(c, cs.seqs, s);
    else if (rpt <= kMaxRowsPerThread) launch_recurrent<kMaxRowsPerThread, 4, false, AT>(c, cs.seqs, s);
    else
      return unsupported("linear_attention (cuda): d_k = " + std::to_string(p.dk) +
                         " is larger than the supported maximum " +
                         std::to_string(kMaxRowsPerThread * kRowsPerPass));
  }
  return launch_status("linear_attention (cuda): recurrent kernel launch");
}

// The entry for either kind of call, on the current device: the backend entries
// (linear_attention.cu, serving.cu) make the context's device current once for whichever path
// they take.
template <class Call>
Status run(const Call& c, const Exec& e) {
  const auto s = static_cast<cudaStream_t>(e.stream);
  switch (params_of(c).act_dtype) {
    case LINATTN_FLOAT32: return launch_for_act<LINATTN_FLOAT32>(c, e.device_id, s);
    case LINATTN_FLOAT16: return launch_for_act<LINATTN_FLOAT16>(c, e.device_id, s);
    case LINATTN_BFLOAT16: return launch_for_act<LINATTN_BFLOAT16>(c, e.device_id, s);
    default:
      return unsupported("linear_attention (cuda): activation dtype " +
                         std::to_string(static_cast<int>(params_of(c).act_dtype)) +
                         " is not float32, float16 or bfloat16");
  }
}

}  // namespace linattn::detail::cuda::recurrent
