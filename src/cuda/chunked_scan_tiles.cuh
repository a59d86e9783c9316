// Pieces the passes of the chunked scan share (chunked_scan.cu, the slab passes;
// chunked_head.cu, the final pass on whole value heads): the prefetch stages and their tile
// loads, what a CTA walks, the state slice a warpgroup holds in registers, and P o Q K^T with
// its tile.
#pragma once

#include <cstdint>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"
#include "cuda/chunked_wgmma.cuh"

namespace linattn::detail::cuda::chunked {

// The tiles of a prefetch stage (kC rows) are swizzled (chunked_wgmma.cuh): the loads copy
// whole 128-byte rows into them at full speed. In the layout without swizzle each warp's
// cp.async cost 32 shared wavefronts instead of 4 and L2 served every 32-byte sector twice.
constexpr Tile kStaged = swizzled(kC);

// Stages in flight: the loads run up to kStages - 1 chunks ahead of the outputs.
constexpr int kStages = 3;

// The stage of the next chunk, and the parity of its use.
__device__ __forceinline__ void next_stage(int& s, uint32_t& phase) {
  if (++s == kStages) {
    s = 0;
    phase ^= 1;
  }
}

// A warpgroup that reads Q skips n chunks (those before its prefix segment's own, which hold no
// Q; a paired P o Q K^T warpgroup's chunks that the peer forms): it releases each stage once
// loaded.
__device__ __forceinline__ void skip_chunks(int64_t n, uint64_t* full, uint64_t* empty, int& s, uint32_t& phase) {
  for (int64_t k = 0; k < n; ++k) {
    mbar_wait(full + s, phase);
    mbar_arrive(empty + s);
    next_stage(s, phase);
  }
}

// Rows [0, n) of a 64 x COLS stage tile (on a 1024-byte boundary) from global memory (row
// stride `stride` elements), zeros below. Each eight lanes of a warp copy 128 bytes of a row.
// Aligned rows go through cp.async (visible after cp_async_wait_all or the stage's mbarrier,
// then proxy_fence); others are copied synchronously. ROLLED keeps the loop rolled: the loading
// warpgroup's code then stays small beside the warpgroups' in the instruction cache (unrolled,
// the three did not fit and warps waited for instructions). LOWER (a T diag(b) record): the
// 16 x 16 blocks above the diagonal, which the prep does not write, are zero-filled instead of
// read.
template <int COLS, int NT = kThreads, bool ROLLED = false, bool LOWER = false>
__device__ __forceinline__ void load_tile(uint16_t* dst, const uint16_t* src, int64_t stride, int n, bool vec,
                                          int t = threadIdx.x) {
  constexpr int kPieces = COLS / 8;  // 16-byte pieces of a row
  constexpr int kChunks = kC * kPieces, kRows = NT / kPieces;  // rows per step
  static_assert(kChunks % NT == 0 && kRows % 8 == 0, "whole steps of whole atoms");
  const int r0 = t / kPieces, cv = (t % kPieces) * 8;
  uint16_t* d0 = dst + swz_off(il(r0, cv, kStaged));  // later steps: whole atoms further
  if (vec && n == kC) {
    // A whole chunk of aligned rows (all but a sequence's last chunk): no row tests, the source
    // moves by a constant step, unrolled even when ROLLED (short code: about 3 instructions per
    // cp.async, plus 3 no-ops the compiler puts before the first, instead of 20 each).
    const uint16_t* sp = src + r0 * stride + cv;
    const int64_t step = kRows * stride;
#pragma unroll
    for (int k = 0; k < kChunks / NT; ++k, sp += step) {
      if constexpr (LOWER) {
        static_assert(kRows == 16, "LOWER: step k covers block row k");
        cp_async16(d0 + il(k * kRows, 0, kStaged), sp, (cv >> 4) <= k);
      } else {
        cp_async16(d0 + il(k * kRows, 0, kStaged), sp);
      }
    }
    return;
  }
#pragma unroll(ROLLED ? 1 : kChunks / NT)
  for (int k = 0; k < kChunks / NT; ++k) {
    const int r = r0 + k * kRows;
    uint16_t* d = d0 + il(k * kRows, 0, kStaged);
    const bool in = r < n && (!LOWER || (cv >> 4) <= (r >> 4));  // LOWER: not above the diagonal
    if (vec) {
      cp_async16(d, src + (in ? r * stride + cv : 0), in);
    } else {
      *reinterpret_cast<uint4*>(d) = in ? load8_unaligned(src + r * stride + cv) : make_uint4(0u, 0u, 0u, 0u);
    }
  }
}

// The state slice of a thread of the state warpgroup, held transposed (S^T: the slab's 64
// columns as rows, d_k columns) as NS = d_k / 64 products' accumulators: element (hf, j, e) is
// S[d][c], c = 16 (w & 3) + lane / 4 + 8 (e / 2) of the slab, d = 64 hf + 8 j + 2 (lane % 4) +
// e % 2.
struct StateMap {
  int c0, d0;  // of element (0, 0, 0)
  __device__ __forceinline__ int c(int e) const { return c0 + 8 * (e >> 1); }
  __device__ __forceinline__ int d(int hf, int j, int e) const { return d0 + 64 * hf + 8 * j + (e & 1); }
};

// Calls f(hf, j, e, o) for each element of the state slice, o its offset in a state block of
// row stride sk with the slab's columns from col0.
template <int NS, class F>
__device__ __forceinline__ void for_state(const StateMap& m, int64_t sk, int col0, F&& f) {
#pragma unroll
  for (int hf = 0; hf < NS; ++hf) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) f(hf, j, e, m.d(hf, j, e) * sk + col0 + m.c(e));
    }
  }
}

// The state slice from / to a state block of dtype dt (float32, bfloat16 or float16): the
// dtype is resolved once, so each access loop is one batch of independent accesses.
template <int NS>
__device__ __forceinline__ void load_state(float (&s)[NS][8][4], const void* base, linattn_dtype dt, int64_t sk,
                                           const StateMap& m, int col0) {
  if (dt == LINATTN_FLOAT32) {
    const float* src = static_cast<const float*>(base);
    for_state<NS>(m, sk, col0, [&](int hf, int j, int e, int64_t o) { s[hf][j][e] = src[o]; });
  } else {
    const uint16_t* src = static_cast<const uint16_t*>(base);
    const bool bf = dt == LINATTN_BFLOAT16;
    for_state<NS>(m, sk, col0, [&](int hf, int j, int e, int64_t o) {
      s[hf][j][e] = bf ? from_bits<true>(src[o]) : from_bits<false>(src[o]);
    });
  }
}
template <int NS>
__device__ __forceinline__ void store_state(const float (&s)[NS][8][4], void* base, linattn_dtype dt, int64_t sk,
                                            const StateMap& m, int col0) {
  if (dt == LINATTN_FLOAT32) {
    float* dst = static_cast<float*>(base);
    for_state<NS>(m, sk, col0, [&](int hf, int j, int e, int64_t o) { dst[o] = s[hf][j][e]; });
  } else {
    uint16_t* dst = static_cast<uint16_t*>(base);
    const bool bf = dt == LINATTN_BFLOAT16;
    for_state<NS>(m, sk, col0, [&](int hf, int j, int e, int64_t o) {
      dst[o] = bf ? to_bits<true>(s[hf][j][e]) : to_bits<false>(s[hf][j][e]);
    });
  }
}

// Serving calls' prefix checkpoints fall on chunk ends (the interval is a multiple of kC): after
// chunk cl of sequence seq_n (seq_len tokens), the state after done = (cl + 1) kC tokens goes to
// slot checkpoint_indices[seq_n, j - 1], j = done / interval, for state head h.
template <int NS>
__device__ __forceinline__ void store_checkpoint(const float (&s)[NS][8][4], const KernelArgs& args, int64_t cl,
                                                 int64_t cbeg, int64_t seq_n, int64_t seq_len, int h,
                                                 const StateMap& m, int col0) {
  const LinearAttentionParams& p = args.p;
  if (args.ix.ckpt_count <= 0 || cl < cbeg) return;
  const int64_t done = (cl + 1) * kC;
  const int64_t j = done / args.ix.ckpt_interval;
  if (done <= seq_len && done % args.ix.ckpt_interval == 0 && j <= args.ix.ckpt_count) {
    const int64_t cs = args.ix.checkpoint_indices.at(seq_n, j - 1);
    if (cs >= 0) {
      store_state(s, static_cast<char*>(p.present) + (cs * p.pres_sb + h * p.pres_sh) * elem_bytes(p.present_dtype),
                  p.present_dtype, p.pres_sk, m, col0);
    }
  }
}

// Eight 16-bit outputs (v, packed in pairs) to o: one 16-byte store where output rows are
// 16-byte aligned (vec16), else four 4-byte stores (vec4) or eight 2-byte ones.
__device__ __forceinline__ void store_out8(uint16_t* o, const uint32_t (&v)[4], bool vec16, bool vec4) {
  if (vec16) {
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(o), "r"(v[0]), "r"(v[1]), "r"(v[2]), "r"(v[3])
                 : "memory");
    return;
  }
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    if (vec4) {
      *reinterpret_cast<uint32_t*>(o + 2 * q) = v[q];
    } else {
      o[2 * q] = static_cast<uint16_t>(v[q] & 0xffffu);
      o[2 * q + 1] = static_cast<uint16_t>(v[q] >> 16);
    }
  }
}

// P o Q K^T (P_rs = exp(G_r - G_s) for s <= r, else 0), formed in place of the warpgroup's
// Q K^T accumulators, as hi + lo A fragments of the product with U: rows row (= 16 wr +
// lane / 4) and row + 8 have G grow; gcol[j] holds G of the thread's columns 8 j + 2 (lane % 4)
// and the next; both scaled by log2(e). K steps past the warp's diagonal block are zero without
// an exp, and only the diagonal block tests s <= r.
template <bool BF16, bool DIAG>
__device__ __forceinline__ void p_step(float (&qk)[8][4], const float2 (&gcol)[8], const float (&grow)[2], int row,
                                       int kk, uint32_t (&ph)[4], uint32_t (&pl)[4]) {
  const int t4 = threadIdx.x & 3;
#pragma unroll
  for (int j = 2 * kk; j < 2 * kk + 2; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const float p = exp2_ftz(grow[e >> 1] - (e & 1 ? gcol[j].y : gcol[j].x)) * qk[j][e];
      qk[j][e] = DIAG && 8 * j + 2 * t4 + (e & 1) > row + 8 * (e >> 1) ? 0.f : p;
    }
  }
  acc_frag<BF16>(qk, kk, ph);
  acc_frag_lo<BF16>(qk, kk, ph, pl);
}
template <bool BF16>
__device__ __forceinline__ void build_p(float (&qk)[8][4], const float2 (&gcol)[8], const float (&grow)[2], int row,
                                        int wr, uint32_t (&ph)[4][4], uint32_t (&pl)[4][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    if (kk < wr) {
      p_step<BF16, false>(qk, gcol, grow, row, kk, ph[kk], pl[kk]);
    } else if (kk == wr) {
      p_step<BF16, true>(qk, gcol, grow, row, kk, ph[kk], pl[kk]);
    } else {
#pragma unroll
      for (int q = 0; q < 4; ++q) ph[kk][q] = pl[kk][q] = 0u;
    }
  }
}

// G of the thread's accumulator columns (8 j + 2 (lane % 4) and the next) from a stage's G, in
// log2 units (P o Q K^T takes exp2 of its differences with the rows').
__device__ __forceinline__ void gcol_log2(const float* Gs, float2 (&gcol)[8]) {
  const int t4 = threadIdx.x & 3;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    gcol[j] = *reinterpret_cast<const float2*>(Gs + 8 * j + 2 * t4);
    gcol[j].x *= kLog2e;
    gcol[j].y *= kLog2e;
  }
}

// Q K^T of a stage (Qs: its Q tile, Ks: its K tile, DK columns; rows: the chunk's queries) for
// P o Q K^T, with G of the thread's rows (grow) and columns (gcol) in log2 units loaded while the
// product runs: what the P o Q K^T warpgroups of both final-pass forms start each chunk with.
template <bool BF16, int DK>
__device__ __forceinline__ void qk_with_gates(float (&qk)[8][4], const uint16_t* Qs, const uint16_t* Ks,
                                              const float* Gs, int row, float (&grow)[2], float2 (&gcol)[8]) {
  wg_begin(qk);
  wg_gemm<BF16, Operand::kRowsK, true>(qk, Qs, kStaged, Ks, kStaged, DK, false);
  wg_issued();
  grow[0] = Gs[row] * kLog2e;
  grow[1] = Gs[row + 8] * kLog2e;
  gcol_log2(Gs, gcol);
  wg_complete();
  wg_done(qk);
}

// The layout of the P o Q K^T tiles that PW hands over: rows of the chunk's queries, columns of
// its keys, 8 x 8 cores (a K-major A operand of the outputs' product).
constexpr Tile kPTile = interleaved(kC / 8);

// Stores the warp's A fragments of P o Q K^T (build_p: rows 16 (w & 3) .., k steps kk) into a
// kPTile tile: each 32-bit store of a warp fills one 128-byte core, without bank conflicts.
// p_off: where register q of k step kk of the warp's fragment (rows row, row + 8) goes.
__device__ __forceinline__ int p_off(int row, int kk, int q) {
  return il(row + 8 * (q & 1), 16 * kk + 8 * (q >> 1) + 2 * (threadIdx.x & 3), kPTile);
}
__device__ __forceinline__ void store_p(const uint32_t (&f)[4][4], uint16_t* tile, int row) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
    for (int q = 0; q < 4; ++q) *reinterpret_cast<uint32_t*>(tile + p_off(row, kk, q)) = f[kk][q];
  }
}

// What a CTA of the scan walks: chunks cl in [pbeg, cend), in order, with outputs from cbeg on
// (pbeg < cbeg: prefix segments), whose tokens start at tbase + cl * kC and end at tok_end, with
// records rec0 + cl (time-major serving calls: rec0 + off(cl)); serving calls count cl within
// the sequence, dense calls within the window. The state comes from init_f (float32
// [d_k][d_v]) or init_p (any dtype, row stride init_sk) or is zero, and goes to fin_f or fin_p
// likewise (neither: a serving call's prefix segment before the last). Serving: the sequence
// seq_n and its length (checkpoints).
struct Walk {
  int64_t bh, b, pbeg, cbeg, cend, rec0, tbase, tok_end;
  int h, seg;
  const float* init_f = nullptr;
  const void* init_p = nullptr;
  linattn_dtype init_dt = LINATTN_FLOAT32;
  int64_t init_sk = 0;
  float* fin_f = nullptr;
  void* fin_p = nullptr;
  int64_t seq_n = 0, seq_len = 0;
};

// Dense calls: the lane bh = (sequence, state head), segment seg of the window; `prefix`: the
// final pass with prefix segments (args.seg_bnd).
template <int DK>
__device__ __forceinline__ void dense_walk(const KernelArgs& args, int64_t bh, int seg, bool prefix, Walk& w) {
  const LinearAttentionParams& p = args.p;
  w.bh = bh;
  w.seg = seg;
  w.h = static_cast<int>(bh % p.Hkv);
  w.b = bh / p.Hkv;
  if (prefix) {
    w.pbeg = w.cbeg = w.cend = 0;
#pragma unroll
    for (int k = 0; k < kMaxPrefixSegments; ++k) {
      if (k == seg) {
        w.cbeg = args.seg_bnd[k];
        w.cend = args.seg_bnd[k + 1];
      }
    }
  } else {
    w.cbeg = seg * args.seg_len;
    w.cend = w.cbeg + args.seg_len < args.nc ? w.cbeg + args.seg_len : args.nc;
    w.pbeg = w.cbeg;
  }
  w.rec0 = bh * args.nc;
  w.tbase = args.c0 * kC;
  w.tok_end = p.T;
  if (!args.first) {
    w.init_f = args.carry + bh * DK * p.dv;
  } else if (p.past) {
    w.init_p = static_cast<const char*>(p.past) + (w.b * p.past_sb + w.h * p.past_sh) * elem_bytes(p.past_dtype);
    w.init_dt = p.past_dtype;
    w.init_sk = p.past_sk;
  }
  if (args.last) {
    w.fin_p = static_cast<char*>(p.present) + (w.b * p.pres_sb + w.h * p.pres_sh) * elem_bytes(p.present_dtype);
  } else {
    w.fin_f = args.carry + bh * DK * p.dv;
  }
}

// Serving calls: state head h of CTA `lane` of the window, which takes the lane-th entry of the
// window map (a sequence with chunks in the window, or one prefix segment of it); false where
// there is none. A segment starts from its split slot and only the last one keeps the end
// state (fin_f and fin_p both null for the others).
template <int DK>
__device__ __forceinline__ bool serving_walk(const KernelArgs& args, const SeqTable& tab, int h, int64_t lane,
                                             Walk& w) {
  const LinearAttentionParams& p = args.p;
  w.h = h;
  w.seg = 0;
  w.bh = h;
  const int64_t wnd = args.c0 / args.window_chunks;
  const WindowLane e = args.window_map[wnd * args.window_lanes + lane];
  const int64_t k = e.k;
  if (k < 0) return false;
  w.pbeg = e.pbeg;
  w.cbeg = e.cbeg;
  w.cend = e.cend;
  const int64_t first = tab.start(k);
  const bool from_carry = w.pbeg > 0, to_carry = w.cend < tab.start(k + 1) - first;
  // Record of chunk cl: h * nc + (its global index - c0), the global index being
  // off(cl) + k (time-major) or first + cl (sequence-major).
  w.rec0 = int64_t{h} * args.nc - args.c0 + (args.time_major ? k : first);
  w.seq_n = tab.seq(k);
  ResolvedSequence r;
  resolve_sequence(args.ix, w.seq_n, &r);  // true: the table holds only sequences that resolve
  w.b = r.b;
  w.seq_len = r.len;
  w.tbase = r.t0;
  w.tok_end = r.t0 + r.len;
  // Carry slot of the sequence (time-major) or of the boundary (sequence-major: before the
  // window for the start state, after it for the end state).
  const int64_t carry_in = args.time_major ? k : wnd - 1, carry_out = args.time_major ? k : wnd;
  if (e.slot >= 0) {
    w.init_f = args.split_state + (e.slot * p.Hkv + h) * DK * p.dv;
  } else if (from_carry) {
    w.init_f = args.carry + (carry_in * p.Hkv + h) * DK * p.dv;
  } else if (r.read >= 0) {
    // The pool read: past_state, or present_state itself when past is absent.
    const bool past = p.past != nullptr;
    w.init_dt = past ? p.past_dtype : p.present_dtype;
    w.init_sk = past ? p.past_sk : p.pres_sk;
    const int64_t off = r.read * (past ? p.past_sb : p.pres_sb) + h * (past ? p.past_sh : p.pres_sh);
    w.init_p = static_cast<const char*>(past ? p.past : p.present) + off * elem_bytes(w.init_dt);
  }
  if (!e.last) {
    // An earlier prefix segment: the last one writes the end state.
  } else if (to_carry) {
    w.fin_f = args.carry + (carry_out * p.Hkv + h) * DK * p.dv;
  } else {
    w.fin_p = static_cast<char*>(p.present) + (r.write * p.pres_sb + h * p.pres_sh) * elem_bytes(p.present_dtype);
  }
  return true;
}

}  // namespace linattn::detail::cuda::chunked
