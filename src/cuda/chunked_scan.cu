// The state-dependent part of the chunked prefill: one CTA of 8 warps per (sequence, kv head,
// 64-column slab of d_v) walks the chunks of a window in order with its d_k x 64 slice of the
// state S in float32 registers. G, T diag(b) and P o Q K^T come from the workspace records of
// chunked_prep.cu; K, Q and the slab of V from the call's tensors. A chunk costs four small
// product chains and three barriers (two without the delta rule):
//   K S and Q S                       (one pass over the state tiles)
//   U = T diag(b) (V - diag(L) K S)   (= U' - W S; V itself without the delta rule)
//   O = scale (diag(L) Q S + (P o Q K^T) U)
//   S <- L_C S + K^T diag(exp(G_C - G)) U
// The next chunk's tiles are prefetched with cp.async into a second stage. The float32 state
// feeds the tensor cores as hi + lo 16-bit parts (ChunkedOptions::split_state).
//
// With segments (chunked_layout.cuh) each CTA walks one segment of the window. The local pass
// (LOCAL) skips the outputs and writes the segment's end state; its extra CTAs run the same
// recurrence on d_k x 64 column blocks of the transition product (start I, V = 0: then
// S <- exp(G_C) S - K^T diag(exp(G_C - G)) T diag(b L) K S = M_c S). The final pass starts
// segment s > 0 from the state the combine pass left in slot s - 1.
//
// Serving calls (SERVING, chunked_layout.cuh): CTA i of a window walks the i-th sequence with
// chunks in the window, from its read slot (or zeros, or its carry slot) to its write slot (or
// its carry slot), and stores prefix checkpoints at the chunk ends where they fall.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

// 16-bit elements of one prefetch stage: K, Q ([kC][DK + 8] each), T diag(b), the slab of V,
// P hi, P lo ([kC][kLd] each), then G (kC float32).
template <int DK>
constexpr int stage_elems() {
  return 2 * kC * (DK + 8) + 4 * kC * kLd + 2 * kC;
}

// Two stages, the state as hi and lo tiles, then U, U diag(exp(G_C - G)) and
// X = V - diag(L) K S as hi and lo tiles.
template <int DK>
constexpr size_t scan_smem_bytes() {
  return (2 * static_cast<size_t>(stage_elems<DK>()) + 2 * DK * kLd + 4 * kC * kLd) * 2;
}

// The float32 state slice (registers, accumulator layout) as hi and lo 16-bit tiles [d_k][64].
template <bool BF16, int NT>
__device__ __forceinline__ void write_state(const float (&s)[NT][4], uint16_t* hi, uint16_t* lo,
                                            int row0, int col0, bool split) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = row0 + g + 8 * hh, c = col0 + 8 * j + 2 * t4;
      const float x0 = s[j][2 * hh], x1 = s[j][2 * hh + 1];
      const uint32_t h = pack2<BF16>(x0, x1);
      *reinterpret_cast<uint32_t*>(hi + r * kLd + c) = h;
      if (split) {
        const float r0 = x0 - from_bits<BF16>(static_cast<uint16_t>(h & 0xffffu));
        const float r1 = x1 - from_bits<BF16>(static_cast<uint16_t>(h >> 16));
        *reinterpret_cast<uint32_t*>(lo + r * kLd + c) = pack2<BF16>(r0, r1);
      }
    }
  }
}

// The float32 state slice (registers, accumulator layout) to a state block of any dtype.
template <int NT>
__device__ __forceinline__ void store_state(const float (&s)[NT][4], void* base, linattn_dtype dt,
                                            int64_t sk, int row0, int col0) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = row0 + g + 8 * (e >> 1), c = col0 + 8 * j + 2 * t4 + (e & 1);
      store_from_float(base, i * sk + c, dt, s[j][e]);
    }
  }
}

// ao += A2 S and, when TWO, au += A1 S, with S = hi (+ lo when SPLIT) 16-bit tiles [K][kLd]:
// the products that read the state share its fragments, and their independent mma chains
// interleave. A1 and A2 are [m][k] with row stride lda; warp tile 16 x 32 at (row0, col0).
template <bool BF16, bool TWO, bool SPLIT>
__device__ __forceinline__ void state_gemm(float (&au)[4][4], const uint16_t* A1, float (&ao)[4][4],
                                           const uint16_t* A2, int lda, const uint16_t* Bh,
                                           const uint16_t* Bl, int K, int row0, int col0) {
  const int lane = threadIdx.x & 31;
  const int mi = lane >> 3, r8 = lane & 7;
#pragma unroll 2
  for (int k0 = 0; k0 < K; k0 += 16) {
    const int aoff = (row0 + (lane & 15)) * lda + k0 + (lane >> 4) * 8;
    uint32_t a1[4], a2[4];
    ldsm_x4(a2, A2 + aoff);
    if constexpr (TWO) ldsm_x4(a1, A1 + aoff);
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      const int boff = (k0 + (mi & 1) * 8 + r8) * kLd + col0 + 16 * p + (mi >> 1) * 8;
      uint32_t b[4];
      ldsm_x4_t(b, Bh + boff);
      mma16816<BF16>(ao[2 * p], a2, b[0], b[1]);
      mma16816<BF16>(ao[2 * p + 1], a2, b[2], b[3]);
      if constexpr (TWO) {
        mma16816<BF16>(au[2 * p], a1, b[0], b[1]);
        mma16816<BF16>(au[2 * p + 1], a1, b[2], b[3]);
      }
      if constexpr (SPLIT) {
        uint32_t c[4];
        ldsm_x4_t(c, Bl + boff);
        mma16816<BF16>(ao[2 * p], a2, c[0], c[1]);
        mma16816<BF16>(ao[2 * p + 1], a2, c[2], c[3]);
        if constexpr (TWO) {
          mma16816<BF16>(au[2 * p], a1, c[0], c[1]);
          mma16816<BF16>(au[2 * p + 1], a1, c[2], c[3]);
        }
      }
    }
  }
}

template <bool BF16, int DK, bool DELTA, bool LOCAL, bool SERVING>
__global__ void __launch_bounds__(kThreads, 1) chunked_scan_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  constexpr int LDK = DK + 8;
  constexpr int kStage = stage_elems<DK>();
  // State slice per warp: 16 rows x 64 columns (d_k = 128) or 16 x 32 (d_k = 64).
  constexpr int NTS = DK == 128 ? 8 : 4;

  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* stages = reinterpret_cast<uint16_t*>(smem);  // [2][kStage]
  uint16_t* Shi = stages + 2 * kStage;
  uint16_t* Slo = Shi + DK * kLd;
  uint16_t* Us = Slo + DK * kLd;
  uint16_t* Uds = Us + kC * kLd;
  uint16_t* Xs = Uds + kC * kLd;
  uint16_t* Xl = Xs + kC * kLd;

  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int slabs = p.dv / kSlab;
  // Column blocks: the value slabs, then (local pass) the blocks of the transition product.
  const int nsl = LOCAL ? slabs + DK / kSlab : slabs;
  const int slab = blockIdx.x % nsl;
  const bool is_m = LOCAL && slab >= slabs;
  const int vcol = (is_m ? slab - slabs : slab) * kSlab;
  const int qpk = p.q_per_kv();
  // What this CTA walks: chunks cl in [cbeg, cend), in order, whose tokens start at
  // tbase + cl * kC and end at tok_end, with records rec0 + cl (time-major serving calls:
  // rec0 + off(cl)); serving calls count cl within the sequence, dense calls within the
  // window. The state comes from init_f (float32 [d_k][d_v]) or init_p (any dtype, row stride
  // init_sk) or is zero, and goes to fin_f or fin_p likewise.
  int64_t bh, b, cbeg, cend, rec0, tbase, tok_end;
  int h, seg;
  const float* init_f = nullptr;
  const void* init_p = nullptr;
  linattn_dtype init_dt = LINATTN_FLOAT32;
  int64_t init_sk = 0;
  float* fin_f = nullptr;
  void* fin_p = nullptr;
  int64_t fin_sk = p.pres_sk;
  // Serving: the sequence and its length (checkpoints).
  int64_t seq_n = 0, seq_len = 0;
  const SeqTable tab{args.table, args.ix.N};
  if constexpr (!SERVING) {
    const int64_t heads = p.B * p.Hkv;
    bh = (blockIdx.x / nsl) % heads;
    seg = static_cast<int>(blockIdx.x / nsl / heads);
    // Segment 0 starts from the true state: its transition product is never needed.
    if (is_m && seg == 0) return;
    h = static_cast<int>(bh % p.Hkv);
    b = bh / p.Hkv;
    cbeg = seg * args.seg_len;
    cend = cbeg + args.seg_len < args.nc ? cbeg + args.seg_len : args.nc;
    rec0 = bh * args.nc;
    tbase = args.c0 * kC;
    tok_end = p.T;
    if (!args.first) {
      init_f = args.carry + bh * DK * p.dv;
    } else if (p.past) {
      init_p = static_cast<const char*>(p.past) + (b * p.past_sb + h * p.past_sh) * elem_bytes(p.past_dtype);
      init_dt = p.past_dtype;
      init_sk = p.past_sk;
    }
    if (args.last) {
      fin_p = static_cast<char*>(p.present) + (b * p.pres_sb + h * p.pres_sh) * elem_bytes(p.present_dtype);
    } else {
      fin_f = args.carry + bh * DK * p.dv;
    }
  } else {
    // CTA i of the window takes the i-th sequence with chunks in it: the window map holds it
    // and its chunks in this window.
    h = static_cast<int>((blockIdx.x / nsl) % p.Hkv);
    seg = 0;
    bh = h;
    const int64_t wnd = args.c0 / args.window_chunks;
    const int64_t* e = args.window_map + 3 * (wnd * args.window_lanes + blockIdx.x / nsl / p.Hkv);
    const int64_t k = e[0];
    if (k < 0) return;
    cbeg = e[1];
    cend = e[2];
    const int64_t first = tab.start(k);
    const bool from_carry = cbeg > 0, to_carry = cend < tab.start(k + 1) - first;
    // Record of chunk cl: h * nc + (its global index - c0), the global index being
    // off(cl) + k (time-major) or first + cl (sequence-major).
    rec0 = int64_t{h} * args.nc - args.c0 + (args.time_major ? k : first);
    seq_n = tab.seq(k);
    ResolvedSequence r;
    resolve_sequence(args.ix, seq_n, &r);  // true: the table holds only sequences that resolve
    b = r.b;
    seq_len = r.len;
    tbase = r.t0;
    tok_end = r.t0 + r.len;
    // Carry slot of the sequence (time-major) or of the boundary (sequence-major: before the
    // window for the start state, after it for the end state).
    const int64_t carry_in = args.time_major ? k : wnd - 1, carry_out = args.time_major ? k : wnd;
    if (from_carry) {
      init_f = args.carry + (carry_in * p.Hkv + h) * DK * p.dv;
    } else if (r.read >= 0) {
      // The pool read: past_state, or present_state itself when past is absent.
      const bool past = p.past != nullptr;
      init_dt = past ? p.past_dtype : p.present_dtype;
      init_sk = past ? p.past_sk : p.pres_sk;
      const int64_t off = r.read * (past ? p.past_sb : p.pres_sb) + h * (past ? p.past_sh : p.pres_sh);
      init_p = static_cast<const char*>(past ? p.past : p.present) + off * elem_bytes(init_dt);
    }
    if (to_carry) {
      fin_f = args.carry + (carry_out * p.Hkv + h) * DK * p.dv;
    } else {
      fin_p = static_cast<char*>(p.present) + (r.write * p.pres_sb + h * p.pres_sh) * elem_bytes(p.present_dtype);
    }
  }
  const int64_t slot = bh * args.nseg + seg;

  const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + p.key_head(h) * DK;
  const uint16_t* qbase0 = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, 0) * DK;
  const uint16_t* vbase = static_cast<const uint16_t*>(p.v) + b * p.v_sb + h * p.dv + vcol;

  // Warp tiles: C x 64 products (16 x 32 per warp) and the state slice.
  const int row0 = 16 * (w & 3), col0 = 32 * (w >> 2);
  const int srow0 = DK == 128 ? 16 * w : 16 * (w & 3);
  const int scol0 = DK == 128 ? 0 : 32 * (w >> 2);

  // Prefetch of chunk cl of the window into stage cl & 1 (the transition-product blocks have
  // no values: V = 0).
  auto record = [&](int64_t cl) { return rec0 + (SERVING && args.time_major ? tab.off(cl) : cl); };
  auto prefetch = [&](int64_t cl) {
    const int64_t t0 = tbase + cl * kC;
    const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
    const int64_t rec = record(cl);
    uint16_t* st = stages + (cl & 1) * kStage;
    uint16_t* tiles = st + 2 * kC * LDK;  // T diag(b), V, P hi, P lo
    load_tile<DK>(st, LDK, kbase + t0 * p.k_st, p.k_st, n, args.vec_in);
    if (!LOCAL) load_tile<DK>(st + kC * LDK, LDK, qbase0 + t0 * p.q_st, p.q_st, n, args.vec_in);
    if (DELTA) load_tile<kC>(tiles, kLd, args.t + rec * kC * kC, kC, kC, true);
    if (!is_m) load_tile<kSlab>(tiles + kC * kLd, kLd, vbase + t0 * p.v_st, p.v_st, n, args.vec_in);
    if (!LOCAL) {
      const uint16_t* pm = args.pm + rec * qpk * 2 * kC * kC;
      load_tile<kC>(tiles + 2 * kC * kLd, kLd, pm, kC, kC, true);
      load_tile<kC>(tiles + 3 * kC * kLd, kLd, pm + kC * kC, kC, kC, true);
    }
    if (tid < kC / 4) {
      cp_async16(tiles + 4 * kC * kLd + 8 * tid, args.g + rec * kC + 4 * tid, true);
    }
  };

  // The first chunk's loads are in flight while the start state is read.
  if (cbeg < cend) prefetch(cbeg);

  float accS[NTS][4];
#pragma unroll
  for (int j = 0; j < NTS; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = srow0 + g + 8 * (e >> 1), c = vcol + scol0 + 8 * j + 2 * t4 + (e & 1);
      if (is_m) {
        accS[j][e] = i == c ? 1.f : 0.f;
      } else if (LOCAL && seg > 0) {
        accS[j][e] = 0.f;
      } else if (!LOCAL && args.nseg > 1) {
        accS[j][e] = args.seg_state[(slot * DK + i) * p.dv + c];
      } else {
        accS[j][e] = init_f ? init_f[i * p.dv + c]
                     : init_p ? load_as_float(init_p, i * init_sk + c, init_dt)
                              : 0.f;
        // The final pass reads segment 0's start here: past and carry may be overwritten by then.
        if (LOCAL) args.seg_state[(slot * DK + i) * p.dv + c] = accS[j][e];
      }
    }
  }
  // The local pass always splits: the transition product multiplies the true state later.
  write_state<BF16>(accS, Shi, Slo, srow0, scol0, LOCAL || args.split);

  // X = V - diag(L) K S feeds T diag(b) as hi + lo parts: rounded once to 16 bits it put
  // five serving tests over their 3e-3 bound and the ungated delta rule at 3.2e-3 (2.6e-3
  // split). The local pass of a segment after the first starts from zero (or I) and skips the
  // split.
  const bool xsplit = !LOCAL || seg == 0;
  for (int64_t cl = cbeg; cl < cend; ++cl) {
    const int64_t t0 = tbase + cl * kC;
    const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
    uint16_t* st = stages + (cl & 1) * kStage;
    const uint16_t* Ks = st;
    uint16_t* Qs = st + kC * LDK;
    const uint16_t* Tbs = st + 2 * kC * LDK;
    const uint16_t* Vs = Tbs + kC * kLd;
    uint16_t* Ph = st + 2 * kC * LDK + 2 * kC * kLd;
    uint16_t* Pl = Ph + kC * kLd;
    const float* Gs = reinterpret_cast<const float*>(Pl + kC * kLd);
    cp_async_wait_all();
    __syncthreads();
    // Stage (cl + 1) & 1 was last read during chunk cl - 1, which ended before this barrier.
    if (cl + 1 < cend) prefetch(cl + 1);
    const float gend = Gs[kC - 1];

    // K S (delta rules) and Q S (final pass) in one pass over the state tiles; then with the
    // delta rule X = V - diag(L) K S to shared memory, U = T diag(b) X; without it U = V.
    // U diag(exp(G_C - G)) goes to Uds, U itself (final pass) to Us.
    float au[4][4], ao[4][4];
    zero_acc(au);
    zero_acc(ao);
    if constexpr (LOCAL) {
      if constexpr (DELTA) state_gemm<BF16, false, true>(au, Ks, au, Ks, LDK, Shi, Slo, DK, row0, col0);
    } else if (args.split) {
      state_gemm<BF16, DELTA, true>(au, Ks, ao, Qs, LDK, Shi, Slo, DK, row0, col0);
    } else {
      state_gemm<BF16, DELTA, false>(au, Ks, ao, Qs, LDK, Shi, Slo, DK, row0, col0);
    }
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = row0 + g + 8 * hh;
      const float l = __expf(Gs[r]), f = __expf(gend - Gs[r]);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = col0 + 8 * j + 2 * t4;
        float v0 = 0.f, v1 = 0.f;
        if (!is_m) {
          const uint32_t v2 = *reinterpret_cast<const uint32_t*>(Vs + r * kLd + c);
          v0 = from_bits<BF16>(static_cast<uint16_t>(v2 & 0xffffu));
          v1 = from_bits<BF16>(static_cast<uint16_t>(v2 >> 16));
        }
        if constexpr (DELTA) {
          const float x0 = v0 - l * au[j][2 * hh], x1 = v1 - l * au[j][2 * hh + 1];
          const uint32_t xh = pack2<BF16>(x0, x1);
          *reinterpret_cast<uint32_t*>(Xs + r * kLd + c) = xh;
          if (xsplit) {
            *reinterpret_cast<uint32_t*>(Xl + r * kLd + c) =
                pack2<BF16>(x0 - from_bits<BF16>(static_cast<uint16_t>(xh & 0xffffu)),
                            x1 - from_bits<BF16>(static_cast<uint16_t>(xh >> 16)));
          }
        } else {
          *reinterpret_cast<uint32_t*>(Uds + r * kLd + c) = pack2<BF16>(v0 * f, v1 * f);
        }
        ao[j][2 * hh] *= l;
        ao[j][2 * hh + 1] *= l;
      }
    }
    if constexpr (DELTA) {
      __syncthreads();
      zero_acc(au);
      warp_gemm<BF16, 4, false, true>(au, Tbs, kLd, Xs, kLd, row0 + 16, row0, col0);
      if (xsplit) warp_gemm<BF16, 4, false, true>(au, Tbs, kLd, Xl, kLd, row0 + 16, row0, col0);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = row0 + g + 8 * hh;
        const float f = __expf(gend - Gs[r]);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int c = col0 + 8 * j + 2 * t4;
          const float x0 = au[j][2 * hh], x1 = au[j][2 * hh + 1];
          if (!LOCAL) *reinterpret_cast<uint32_t*>(Us + r * kLd + c) = pack2<BF16>(x0, x1);
          *reinterpret_cast<uint32_t*>(Uds + r * kLd + c) = pack2<BF16>(x0 * f, x1 * f);
        }
      }
    }
    __syncthreads();

    if constexpr (LOCAL) {
      const float lend = __expf(gend);
#pragma unroll
      for (int j = 0; j < NTS; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) accS[j][e] *= lend;
      }
      warp_gemm<BF16, NTS, true, true>(accS, Ks, LDK, Uds, kLd, kC, srow0, scol0);
      write_state<BF16>(accS, Shi, Slo, srow0, scol0, true);
      continue;
    }
    const uint16_t* Ucur = DELTA ? Us : Vs;

    // Outputs of every query head reading this state: scale (diag(L) Q S + (P o Q K^T) U).
    for (int jq = 0; jq < qpk; ++jq) {
      if (jq > 0) {
        // Q and P o Q K^T of the next head replace the first head's in this stage.
        __syncthreads();
        const int64_t rec = record(cl);
        const uint16_t* qbase = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, jq) * DK;
        load_tile<DK>(Qs, LDK, qbase + t0 * p.q_st, p.q_st, n, args.vec_in);
        const uint16_t* pm = args.pm + (rec * qpk + jq) * 2 * kC * kC;
        load_tile<kC>(Ph, kLd, pm, kC, kC, true);
        load_tile<kC>(Pl, kLd, pm + kC * kC, kC, kC, true);
        cp_async_wait_all();
        __syncthreads();
        zero_acc(ao);
        if (args.split) {
          state_gemm<BF16, false, true>(au, Qs, ao, Qs, LDK, Shi, Slo, DK, row0, col0);
        } else {
          state_gemm<BF16, false, false>(au, Qs, ao, Qs, LDK, Shi, Slo, DK, row0, col0);
        }
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const float l = __expf(Gs[row0 + g + 8 * hh]);
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            ao[j][2 * hh] *= l;
            ao[j][2 * hh + 1] *= l;
          }
        }
      }
      warp_gemm<BF16, 4, false, true>(ao, Ph, kLd, Ucur, kLd, row0 + 16, row0, col0);
      warp_gemm<BF16, 4, false, true>(ao, Pl, kLd, Ucur, kLd, row0 + 16, row0, col0);
      const int oh = p.output_head(h, jq);
      uint16_t* obase = static_cast<uint16_t*>(p.out) + b * p.o_sb + oh * p.dv + vcol;
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = row0 + g + 8 * hh;
        if (r < n) {
          uint16_t* orow = obase + (t0 + r) * p.o_st;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const int c = col0 + 8 * j + 2 * t4;
            const uint32_t v2 = pack2<BF16>(p.scale * ao[j][2 * hh], p.scale * ao[j][2 * hh + 1]);
            if (args.vec_out) {
              *reinterpret_cast<uint32_t*>(orow + c) = v2;
            } else {
              orow[c] = static_cast<uint16_t>(v2 & 0xffffu);
              orow[c + 1] = static_cast<uint16_t>(v2 >> 16);
            }
          }
        }
      }
    }

    // S <- exp(G_C) S + K^T diag(exp(G_C - G)) U.
    const float lend = __expf(gend);
#pragma unroll
    for (int j = 0; j < NTS; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) accS[j][e] *= lend;
    }
    warp_gemm<BF16, NTS, true, true>(accS, Ks, LDK, Uds, kLd, kC, srow0, scol0);
    // With several query heads the last head's Q S may still be reading the state tiles.
    if (qpk > 1) __syncthreads();
    write_state<BF16>(accS, Shi, Slo, srow0, scol0, args.split);
    if (SERVING && args.ix.ckpt_count > 0) {
      // Prefix checkpoints fall on chunk ends (the interval is a multiple of kC): the state
      // after `done` tokens goes to slot checkpoint_indices[n, j - 1], j = done / interval.
      const int64_t done = (cl + 1) * kC;
      const int64_t j = done / args.ix.ckpt_interval;
      if (done <= seq_len && done % args.ix.ckpt_interval == 0 && j <= args.ix.ckpt_count) {
        const int64_t cs = args.ix.checkpoint_indices.at(seq_n, j - 1);
        if (cs >= 0) {
          store_state(accS, static_cast<char*>(p.present) +
                                (cs * p.pres_sb + h * p.pres_sh) * elem_bytes(p.present_dtype),
                      p.present_dtype, p.pres_sk, srow0, vcol + scol0);
        }
      }
    }
  }

#pragma unroll
  for (int j = 0; j < NTS; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = srow0 + g + 8 * (e >> 1), c = vcol + scol0 + 8 * j + 2 * t4 + (e & 1);
      if (LOCAL) {
        if (is_m) {
          args.seg_m[(slot * DK + i) * DK + c] = accS[j][e];
        } else {
          args.seg_state[((slot + 1) * DK + i) * p.dv + c] = accS[j][e];
        }
      } else if (seg + 1 == args.nseg) {  // only the last segment's end state leaves the window
        if (fin_p) {
          store_from_float(fin_p, i * fin_sk + c, p.present_dtype, accS[j][e]);
        } else {
          fin_f[i * p.dv + c] = accS[j][e];
        }
      }
    }
  }
}

template <bool BF16, int DK, bool DELTA, bool LOCAL, bool SERVING = false>
Status launch(const KernelArgs& a, cudaStream_t stream) {
  auto kernel = chunked_scan_kernel<BF16, DK, DELTA, LOCAL, SERVING>;
  constexpr size_t bytes = scan_smem_bytes<DK>();
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (scan): ") + cudaGetErrorString(err));
  }
  // The local pass skips the last segment, whose end state only the final pass produces.
  // Serving: one CTA per (sequence with chunks in the window, kv head, slab); a window of nc
  // chunks meets at most nc sequences.
  const int64_t lanes = a.serving ? (a.nc < a.ix.N ? a.nc : a.ix.N) * a.p.Hkv : a.p.B * a.p.Hkv;
  const int64_t blocks = lanes * (a.p.dv / kSlab + (LOCAL ? DK / kSlab : 0)) *
                         (LOCAL ? a.nseg - 1 : a.nseg);
  if (blocks == 0) return Status::ok_status();
  kernel<<<static_cast<unsigned>(blocks), kThreads, bytes, stream>>>(a);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (scan): ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

template <bool BF16, int DK>
Status launch_rule(const KernelArgs& a, cudaStream_t stream) {
  if (a.serving) return a.p.delta ? launch<BF16, DK, true, false, true>(a, stream) : launch<BF16, DK, false, false, true>(a, stream);
  if (a.local) return a.p.delta ? launch<BF16, DK, true, true>(a, stream) : launch<BF16, DK, false, true>(a, stream);
  return a.p.delta ? launch<BF16, DK, true, false>(a, stream) : launch<BF16, DK, false, false>(a, stream);
}

}  // namespace

Status launch_scan(const KernelArgs& a, cudaStream_t stream) {
  if (a.p.B == 0) return Status::ok_status();
  const bool bf16 = a.p.act_dtype == LINATTN_BFLOAT16;
  if (a.p.dk == 128) return bf16 ? launch_rule<true, 128>(a, stream) : launch_rule<false, 128>(a, stream);
  return bf16 ? launch_rule<true, 64>(a, stream) : launch_rule<false, 64>(a, stream);
}

}  // namespace linattn::detail::cuda::chunked
