// The state-independent part of the chunked prefill (CHUNKED.md "Within a chunk"), for every
// (sequence, kv head, chunk) of a window at once: one CTA of 8 warps per chunk and pair of value
// heads that share a key head (one value head when the key heads' groups are odd) loads K once,
// computes K K^T once and for each of its value heads G, A = masked b exp(dG) K K^T and
// T = (I + A)^-1; it writes G and T diag(b) (16-bit, rounded from the solve's float32 values as
// each block is found; the six 16 x 16 blocks above the diagonal, all zero, are not written: the
// scan's loads zero-fill them) to the workspace records of chunked_layout.cuh for the sequential
// kernel, which applies T to the chunk's values and forms P o Q K^T itself. The warps split the
// 16 x 16 blocks of A by kind, with one CTA barrier between the phases:
//   warps 0-3: diagonal block w of K K^T, masked for each head into float32, then its inverse
//              by forward substitution (one half-warp per head), without waiting for the others;
//   warps 4-7: the six blocks below the diagonal, masked for each head into hi + lo parts;
//   then the off-diagonal blocks of T row by row on the tensor cores with hi + lo operands
//   (off_diagonal_row), the two heads' rows on separate warps side by side.
// Products run on mma.sync with 16-bit operands and float32 accumulation. Serving calls number
// chunks globally over the sequences (chunked_layout.cuh): a CTA finds its tokens in the chunk
// map.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

// Value heads per CTA: two when consecutive value heads share their key head (an even number of
// value heads per key head), else one.
__host__ __device__ __forceinline__ int prep_heads(const LinearAttentionParams& p) {
  return (p.Hkv / p.Hk) % 2 == 0 ? 2 : 1;
}

// A is lower triangular and the solve reads nothing on or above the diagonal of its 16 x 16
// blocks from the 16-bit tiles: they keep A's six blocks below the diagonal, block (i, j) at
// i (i - 1) / 2 + j, 16 rows of 32 bytes; rows 4-7 and 12-15 of a block hold their two 16-byte
// halves swapped, so that the eight rows an ldmatrix (or a warp's accumulator store) touches fall
// on distinct banks. Of T only the four diagonal blocks pass through shared memory (DIAG: block i
// at i, the same rows): the others stay in the registers of the warp that finds them
// (off_diagonal_row).
constexpr int kTri = 6 * 256;
constexpr int kDiag = 4 * 256;
template <bool DIAG = false>
__device__ __forceinline__ int tri(int r, int c) {
  const int bi = r >> 4;
  return (DIAG ? bi : bi * (bi - 1) / 2 + (c >> 4)) * 256 + (r & 15) * 16 + ((((c >> 3) ^ (r >> 2)) & 1) << 3) +
         (c & 7);
}

// A's diagonal blocks in float32 for the forward substitution, transposed (a column of a block
// is a row here, read four values at a time), rows of kAdLd floats: 16-byte aligned, and the
// accumulator stores of the mask (8 rows x 4 column pairs) fall on distinct banks.
constexpr int kAdLd = 20;
constexpr int kAdHead = 4 * 16 * kAdLd;  // floats per head

// Per value head: A hi, A lo (kTri each), T hi, T lo (kDiag each), 16-bit; then Ad (float32).
constexpr int kHeadTiles = 2 * kTri + 2 * kDiag;
constexpr size_t kHeadBytes = size_t{kHeadTiles} * 2 + size_t{kAdHead} * 4;

// K ([kC][DK + 8]), then per value head its tiles (kHeadBytes), then G and beta per value head.
template <int DK>
constexpr size_t prep_k_bytes() {
  return static_cast<size_t>(kC) * (DK + 8) * 2;
}
template <int DK>
constexpr size_t prep_smem_bytes(int nh) {
  return prep_k_bytes<DK>() + static_cast<size_t>(nh) * kHeadBytes + static_cast<size_t>(nh) * 2 * kC * 4;
}
// Four CTAs per SM (sm_90: 228 KB, 1 KB of it reserved per CTA).
static_assert(4 * (prep_smem_bytes<128>(2) + 1024) <= 228 * 1024, "four prep CTAs per SM");

// The triangular inverse runs on the tensor cores with every operand as hi + lo bfloat16 parts
// (three products: hi hi, hi lo, lo hi; about 16 significant bits, float32 accumulation), in
// bfloat16 whatever the activation type, because bfloat16 keeps the float32 range.
// acc (16 x 16, two n tiles) += A B with A = ah + al and B = b (ldmatrix .trans fragments of
// a [k][n] tile, hi and lo).
__device__ __forceinline__ void mma_split(float (&acc)[2][4], const uint32_t (&ah)[4],
                                          const uint32_t (&al)[4], const uint32_t (&bh)[4],
                                          const uint32_t (&bl)[4]) {
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
    mma16816<true>(acc[nt], ah, bh[2 * nt], bh[2 * nt + 1]);
    mma16816<true>(acc[nt], ah, bl[2 * nt], bl[2 * nt + 1]);
    mma16816<true>(acc[nt], al, bh[2 * nt], bh[2 * nt + 1]);
  }
}

// The fragments of the 16 x 16 block at (r0, c0) (on or below the diagonal; DIAG: on it, of T)
// of a triangular tile as the A operand (a) and, for a [k][n] tile, as the B operand (b).
template <bool DIAG = false>
__device__ __forceinline__ void block_a(uint32_t (&a)[4], const uint16_t* t, int r0, int c0) {
  const int lane = threadIdx.x & 31;
  ldsm_x4(a, t + tri<DIAG>(r0 + (lane & 15), c0 + (lane >> 4) * 8));
}
template <bool DIAG = false>
__device__ __forceinline__ void block_b(uint32_t (&b)[4], const uint16_t* t, int r0, int c0) {
  const int lane = threadIdx.x & 31, mi = lane >> 3, r8 = lane & 7;
  ldsm_x4_t(b, t + tri<DIAG>(r0 + (mi & 1) * 8 + r8, c0 + (mi >> 1) * 8));
}

// The masks of A = strictly lower b_r exp(G_r - G_s) (k_r . k_s) on a warp's accumulators of
// K K^T (lane (g, t4): rows row0 + g + 8 hh, column pairs col0 + 8 q + 2 t4 of n tile q), for one
// head: G in log2 units (Gs), beta (Bv).
// A block below the diagonal (every entry masked in) as hi + lo parts to the tiles (Ah, A lo at
// Ah + kTri), NT n tiles from col0 (both multiples of 16, and col0 + 8 NT <= row0). The tri()
// offset of an entry is a lane part by the parity of q (the swizzle bit is (q ^ g >> 2) & 1) and
// constants.
template <int NT>
__device__ __forceinline__ void mask_below(const float (&acc)[NT][4], int row0, int col0, const float* Gs,
                                           const float* Bv, uint16_t* Ah) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3, bi = row0 >> 4;
  const int base = (bi * (bi - 1) / 2 + (col0 >> 4)) * 256 + g * 16 + 2 * t4, sw = ((g >> 2) & 1) << 3;
  const float gr[2] = {Gs[row0 + g], Gs[row0 + g + 8]}, br[2] = {Bv[row0 + g], Bv[row0 + g + 8]};
#pragma unroll
  for (int q = 0; q < NT; ++q) {
    const float2 gs = *reinterpret_cast<const float2*>(Gs + col0 + 8 * q + 2 * t4);
    const int oq = base + (q >> 1) * 256 + ((q & 1) ? (sw ^ 8) : sw);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const float a0 = br[hh] * exp2_ftz(gr[hh] - gs.x) * acc[q][2 * hh];
      const float a1 = br[hh] * exp2_ftz(gr[hh] - gs.y) * acc[q][2 * hh + 1];
      const uint32_t hi = pack2<true>(a0, a1);
      *reinterpret_cast<uint32_t*>(Ah + oq + hh * 128) = hi;
      *reinterpret_cast<uint32_t*>(Ah + kTri + oq + hh * 128) = pack2_lo<true>(a0, a1, hi);
    }
  }
}

// Diagonal block i in float32, transposed, to ad (the head's Ad block i): entries on and above
// the diagonal are zero. Of the lane's four 8 x 8 quarters, the upper right is all zero and the
// lower left all below the diagonal; the other two compare.
__device__ __forceinline__ void mask_diagonal(const float (&acc)[2][4], int i, const float* Gs, const float* Bv,
                                              float* ad) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3, r0 = 16 * i;
  const float gr[2] = {Gs[r0 + g], Gs[r0 + g + 8]}, br[2] = {Bv[r0 + g], Bv[r0 + g + 8]};
#pragma unroll
  for (int q = 0; q < 2; ++q) {
    const float2 gs = *reinterpret_cast<const float2*>(Gs + r0 + 8 * q + 2 * t4);
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      float* dd = ad + (8 * q + 2 * t4) * kAdLd + g + 8 * hh;
      float a0 = 0.f, a1 = 0.f;
      if (q <= hh) {
        a0 = br[hh] * exp2_ftz(gr[hh] - gs.x) * acc[q][2 * hh];
        a1 = br[hh] * exp2_ftz(gr[hh] - gs.y) * acc[q][2 * hh + 1];
        if (q == hh) {  // column 8 q + 2 t4 (+ 1) against row 8 hh + g
          a0 = 2 * t4 < g ? a0 : 0.f;
          a1 = 2 * t4 + 1 < g ? a1 : 0.f;
        }
      }
      dd[0] = a0;
      dd[kAdLd] = a1;
    }
  }
}

// Block row I of T = (I + A)^-1 below the diagonal, from T (I + A) = I:
//   T_Ij = -(T_II A_Ij + sum_{m=j+1}^{I-1} T_Im A_mj) T_jj,  j = I - 1 .. 0,
// on one warp, stored as T diag(b) to the record (tout). The T_II A_Ij terms need only the
// diagonal block and go first for every j (independent products); each T_Im then enters the
// remaining sums from registers (its accumulators are the A operand's layout), so the dependent
// chain is two hi + lo products per block (it was one per term: nine for I = 3) and the blocks
// below the diagonal never pass through shared memory. Ah: A hi (A lo follows), Th: T hi (T lo
// follows; only its diagonal blocks are read); bv: beta of the chunk's rows.
template <bool BF16, int I>
__device__ __forceinline__ void off_diagonal_row(const uint16_t* Ah, const uint16_t* Th, const float* bv,
                                                 uint16_t* tout) {
  const uint16_t* Al = Ah + kTri;
  const uint16_t* Tl = Th + kDiag;
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  float x[I][2][4] = {};
  {
    uint32_t th[4], tl[4];
    block_a<true>(th, Th, 16 * I, 16 * I);
    block_a<true>(tl, Tl, 16 * I, 16 * I);
#pragma unroll
    for (int j = 0; j < I; ++j) {
      uint32_t bh[4], bl[4];
      block_b(bh, Ah, 16 * I, 16 * j);
      block_b(bl, Al, 16 * I, 16 * j);
      mma_split(x[j], th, tl, bh, bl);
    }
  }
  uint32_t fh[I][4], fl[I][4];  // T_Im as A operands (hi, lo), m = j + 1 .. I - 1 once found
#pragma unroll
  for (int j = I - 1; j >= 0; --j) {
#pragma unroll
    for (int m = j + 1; m < I; ++m) {
      uint32_t bh[4], bl[4];
      block_b(bh, Ah, 16 * m, 16 * j);
      block_b(bl, Al, 16 * m, 16 * j);
      mma_split(x[j], fh[m], fl[m], bh, bl);
    }
    // X in accumulator layout is the A operand of X T_jj.
    uint32_t xh[4], xl[4], bh[4], bl[4];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float x0 = x[j][q >> 1][2 * (q & 1)], x1 = x[j][q >> 1][2 * (q & 1) + 1];
      xh[q] = pack2<true>(x0, x1);
      xl[q] = pack2_lo<true>(x0, x1, xh[q]);
    }
    block_b<true>(bh, Th, 16 * j, 16 * j);
    block_b<true>(bl, Tl, 16 * j, 16 * j);
    float y[2][4] = {};
    mma_split(y, xh, xl, bh, bl);
    const uint64_t pol = l2_evict_first();  // made here: held across the row it cost spills
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float y0 = -y[q >> 1][2 * (q & 1)], y1 = -y[q >> 1][2 * (q & 1) + 1];
      if (j > 0) {
        fh[j][q] = pack2<true>(y0, y1);
        fl[j][q] = pack2_lo<true>(y0, y1, fh[j][q]);
      }
      const int r = 16 * I + g + 8 * (q & 1), c = 16 * j + 8 * (q >> 1) + 2 * t4;
      st_global_hint(reinterpret_cast<uint32_t*>(tout + r * kC + c), pack2<BF16>(y0 * bv[c], y1 * bv[c + 1]), pol);
    }
  }
}

// Elements i0 and i1 of a gate array (bfloat16, float16 or float32) as float, each 0 where its
// flag is clear, with both loads issued before either is converted: load_as_float's switch on
// the type made the second load wait for the first.
__device__ __forceinline__ float2 load2_gates(const void* base, int64_t i0, bool v0, int64_t i1, bool v1,
                                              linattn_dtype t) {
  if (t == LINATTN_FLOAT32) {
    const float* f = static_cast<const float*>(base);
    return make_float2(v0 ? f[i0] : 0.f, v1 ? f[i1] : 0.f);
  }
  const uint16_t* u = static_cast<const uint16_t*>(base);
  const uint16_t a = v0 ? u[i0] : uint16_t{0}, c = v1 ? u[i1] : uint16_t{0};  // zero bits: +0 in both
  return t == LINATTN_FLOAT16 ? make_float2(from_bits<false>(a), from_bits<false>(c))
                              : make_float2(from_bits<true>(a), from_bits<true>(c));
}

// Prefix segments (chunked_layout.cuh): the window's start state of value heads h0 .. h0 + nh - 1
// of sequence b (the carry, past in any dtype, or zeros) as float32 to slot 0 of their segments,
// spread over the window's chunk CTAs (CTA lc takes elements lc kThreads + tid + k nc kThreads).
// The scan's segments all start there: the last one overwrites the carry (or an in-place past)
// while the others may still be about to read it.
__device__ void copy_start_state(const KernelArgs& a, int64_t b, int h0, int nh, uint32_t lc) {
  const LinearAttentionParams& p = a.p;
  const int64_t per = int64_t{p.dk} * p.dv, n = nh * per;
  for (int64_t e = int64_t{lc} * kThreads + threadIdx.x; e < n; e += a.nc * kThreads) {
    const int64_t j = e / per, r = (e - j * per) / p.dv, c = e - j * per - r * p.dv;
    const int64_t bh = b * p.Hkv + h0 + j;
    float x = 0.f;
    if (!a.first) {
      x = a.carry[bh * per + r * p.dv + c];
    } else if (p.past) {
      x = load_as_float(p.past, b * p.past_sb + (h0 + j) * p.past_sh + r * p.past_sk + c, p.past_dtype);
    }
    a.seg_state[bh * a.nseg * per + r * p.dv + c] = x;
  }
}

// Serving windows with prefix segments (chunked_layout.cuh): the start states of the window's
// split sequences, value heads h0 .. h0 + nh - 1, as float32 to their split slots, in spans of
// kCopySpan elements (one slot and head each: kCopySpan divides d_k d_v) over the window's
// first CTAs, kCopyPerThread per thread with their loads issued together. The other CTAs skip
// it without a load: a dependent load or two before every CTA's own work cost the prep about
// 10% (measured on the varlen row, 0.29 -> 0.32 ms).
constexpr int kCopyPerThread = 16;
constexpr int64_t kCopySpan = int64_t{kThreads} * kCopyPerThread;
static_assert(64 * 64 % kCopySpan == 0, "a copy span lies within one head's state");
__device__ void copy_split_starts(const KernelArgs& a, int h0, int nh, uint32_t lc) {
  const LinearAttentionParams& p = a.p;
  const int64_t per = int64_t{p.dk} * p.dv, spans = a.split_lanes * nh * per / kCopySpan;
  for (int64_t sp = lc; sp < spans; sp += a.nc) {
    const int64_t e0 = sp * kCopySpan;
    const int64_t j = e0 / (nh * per), jh = (e0 - j * nh * per) / per, i0 = e0 - (j * nh + jh) * per;
    const SplitStart ss = a.split_src[(a.c0 / a.window_chunks) * a.split_lanes + j];
    if (ss.k < 0) continue;
    const int64_t h = h0 + jh;
    float x[kCopyPerThread] = {};
    const auto pool = [&](const void* base, int64_t sh, int64_t sk, linattn_dtype dt) {
#pragma unroll
      for (int it = 0; it < kCopyPerThread; ++it) {
        const int64_t i = i0 + it * kThreads + threadIdx.x, r = i / p.dv;
        x[it] = load_as_float(base, ss.base + h * sh + r * sk + (i - r * p.dv), dt);
      }
    };
    if (ss.kind == 1) {
      const float* src = a.carry + ss.base + h * per + i0 + threadIdx.x;
#pragma unroll
      for (int it = 0; it < kCopyPerThread; ++it) x[it] = src[it * kThreads];
    } else if (ss.kind == 2) {
      pool(p.past, p.past_sh, p.past_sk, p.past_dtype);
    } else if (ss.kind == 3) {
      pool(p.present, p.pres_sh, p.pres_sk, p.present_dtype);
    }
    float* dst = a.split_state + (j * p.Hkv + h) * per + i0 + threadIdx.x;
#pragma unroll
    for (int it = 0; it < kCopyPerThread; ++it) dst[it * kThreads] = x[it];
  }
}

// Four CTAs per SM (64 registers, 49 KB of shared memory at d_k = 128): the phases are
// latency-bound, and a fourth CTA took the prep 4-15% lower than three.
template <bool BF16, int DK, bool DELTA>
__global__ void __launch_bounds__(kThreads, 4) chunked_prep_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  constexpr int LDK = DK + 8;
  const int nh = args.prep_nh;  // prep_heads(p), set at the launch

  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(smem);  // [kC][LDK]
  unsigned char* heads = smem + prep_k_bytes<DK>();   // [nh][kHeadBytes]
  float* Gs = reinterpret_cast<float*>(heads + nh * kHeadBytes);  // [nh][kC]
  float* Bs = Gs + nh * kC;                                       // [nh][kC]
  // Head j's 16-bit tiles (A hi, A lo, T hi, T lo) and A's diagonal blocks in float32 (Ad).
  auto head_tiles = [&](int j) { return reinterpret_cast<uint16_t*>(heads + j * kHeadBytes); };
  auto head_ad = [&](int j) { return reinterpret_cast<float*>(heads + j * kHeadBytes + kHeadTiles * 2); };

  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31;
  // This CTA's chunk lc of the window and value heads h0 .. h0 + nh - 1; head j's records are
  // rec0 + j nc (chunked_layout.cuh). Dense calls take the chunks of one head group in a row;
  // serving calls the head groups of one chunk in a row, which measured faster there (the
  // varlen row's prep 0.31-0.32 -> 0.295 ms, the lone sequence -4%) but slower at 8 x 8192
  // (0.249 -> 0.27-0.28). 32-bit index arithmetic: grids stay below 2^31 CTAs.
  const uint32_t nc = static_cast<uint32_t>(args.nc), cta = blockIdx.x;
  int h0;
  uint32_t lc;
  int64_t b, t0;
  // Record numbers fit 32 bits (at most nh per CTA of a grid below 2^31); 64-bit, the value was
  // spilled across the phases and its reloads stalled the gate and off-diagonal warps.
  uint32_t rec0;
  int n;
  if (!args.serving) {
    const uint32_t grp = args.div_nc.div(cta), bq = args.div_groups.div(grp);
    lc = cta - grp * nc;
    b = bq;
    h0 = static_cast<int>(grp - bq * args.div_groups.d) * nh;
    t0 = (args.c0 + lc) * kC;
    n = static_cast<int>(p.T - t0 < kC ? p.T - t0 : kC);
    rec0 = (static_cast<uint32_t>(b) * p.Hkv + h0) * nc + lc;
  } else {
    // Global chunk gc of the call: its tokens from the chunk map (one load; CTAs past the
    // real total find no tokens and exit).
    lc = args.div_groups.div(cta);
    h0 = static_cast<int>(cta - lc * args.div_groups.d) * nh;
    if (args.split_lanes > 0) copy_split_starts(args, h0, nh, lc);
    const ChunkTokens ct = chunk_tokens(args.chunk_map, args.c0 + lc);
    if (ct.n == 0) return;
    b = ct.b;
    t0 = ct.t0;
    n = ct.n;
    rec0 = static_cast<uint32_t>(h0) * nc + lc;
  }

  // K and the records are touched once here (the final pass reads them long after): evicted
  // first, they leave L2 to the gates and betas, whose 32-byte sectors eight head groups read,
  // in a long sequence far apart (at 1 x 65536, 16 / 32 heads: the prep's DRAM reads 383 -> 283
  // MB, its time -15%). The policy is made where it is used: held across the phases it cost
  // ptxas spills.
  // K feeds A only: without the delta rule the prep writes G alone.
  if constexpr (DELTA) {
    const int kh = static_cast<int>(args.div_kv_per_k.div(static_cast<uint32_t>(h0)));  // p.key_head(h0)
    const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + int64_t{kh} * DK;
    load_tile<DK>(Ks, LDK, kbase + t0 * p.k_st, p.k_st, n, args.vec_in, l2_evict_first());
  }
  // Prefix segments: the start state's copy after the loads' issue, so that its load latency
  // overlaps theirs.
  if (!args.serving && args.prefix) copy_start_state(args, b, h0, nh, lc);
  if (w < nh) {
    // G = inclusive prefix sum of g over the chunk for head h0 + w (padding rows add 0, so
    // G[63] = G at the last real token).
    float g0 = 0.f, g1 = 0.f;
    if (p.decay) {
      const int64_t base = b * p.g_sb + h0 + w;
      const float2 gg = load2_gates(p.decay, base + (t0 + 2 * lane) * p.g_st, 2 * lane < n,
                                    base + (t0 + 2 * lane + 1) * p.g_st, 2 * lane + 1 < n, args.gate_dtype);
      g0 = gg.x;
      g1 = gg.y;
    }
    float s = g0 + g1;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const float y = __shfl_up_sync(0xffffffffu, s, off);
      if (lane >= off) s += y;
    }
    float* gs = Gs + w * kC;  // log2 units for the mask's exponentials
    gs[2 * lane] = (s - g1) * kLog2e;
    gs[2 * lane + 1] = s * kLog2e;
    float* gout = args.g + size_t{rec0 + w * nc} * kC;
    gout[2 * lane] = s - g1;
    gout[2 * lane + 1] = s;
  } else if (DELTA && w >= 2 && w < 2 + 2 * nh) {
    // beta of head h0 + j on warps 2 + 2 j and 3 + 2 j.
    const int j = (w - 2) >> 1, r = tid - 64 * (j + 1);
    const int64_t bcol = p.beta_shared ? 0 : h0 + j;
    Bs[j * kC + r] = r < n ? load_as_float(p.beta, b * p.beta_sb + (t0 + r) * p.beta_st + bcol, args.gate_dtype) : 0.f;
  }
  cp_async_wait_all();
  __syncthreads();

  if constexpr (DELTA) {
    if (w < 4) {
      // Diagonal block w: K K^T, the mask of each head, then its inverse. The forward
      // substitution reads only what this warp wrote, so no barrier of the CTA comes between.
      float acc[2][4];
      zero_acc(acc);
      warp_gemm<BF16, 2, false, false>(acc, Ks, LDK, Ks, LDK, DK, 16 * w, 16 * w);
      for (int j = 0; j < nh; ++j) mask_diagonal(acc, w, Gs + j * kC, Bs + j * kC, head_ad(j) + w * (16 * kAdLd));
      __syncwarp();
      // T_ww = (I + A_ww)^-1 of head lane / 16: lane c of the half-warp solves column c in float32
      // by forward substitution, right-looking: once t_s is known it goes into the sums of every
      // later row (independent multiply-adds, A's column s read four values at a time, the
      // half-warp's loads coinciding), so the dependent chain is one multiply-add per row instead
      // of one per term (the same terms in the same order per row).
      const int j = lane >> 4, base = 16 * w, c = lane & 15;
      if (j < nh) {
        uint16_t* Th = head_tiles(j) + 2 * kTri;
        uint16_t* Tl = Th + kDiag;
        const float* ad = head_ad(j) + w * (16 * kAdLd);
        const float bc = Bs[j * kC + base + c];
        uint16_t* tout = args.t + size_t{rec0 + j * nc} * (kC * kC) + base * kC + base + c;
        const uint64_t pol = l2_evict_first();
        float acc_t[16];
#pragma unroll
        for (int r = 0; r < 16; ++r) acc_t[r] = 0.f;
#pragma unroll
        for (int s = 0; s < 16; ++s) {
          const float t = s < c ? 0.f : (s == c ? 1.f : -acc_t[s]);
#pragma unroll
          for (int r4 = (s + 1) / 4; r4 < 4; ++r4) {
            const float4 a = *reinterpret_cast<const float4*>(ad + s * kAdLd + 4 * r4);  // A[4 r4 ..][s]
            if (4 * r4 > s) acc_t[4 * r4] += a.x * t;
            if (4 * r4 + 1 > s) acc_t[4 * r4 + 1] += a.y * t;
            if (4 * r4 + 2 > s) acc_t[4 * r4 + 2] += a.z * t;
            if (4 * r4 + 3 > s) acc_t[4 * r4 + 3] += a.w * t;
          }
          const uint16_t hi = to_bits<true>(t);
          Th[tri<true>(base + s, base + c)] = hi;
          Tl[tri<true>(base + s, base + c)] = to_bits<true>(t - from_bits<true>(hi));
          st_global_hint(tout + s * kC, to_bits<BF16>(t * bc), pol);  // zero above the diagonal
        }
      }
    } else if (w < 6) {
      // Blocks (w - 2, 0) and (w - 2, 1): rows 32 .. 63, columns 0 .. 31.
      float acc[4][4];
      zero_acc(acc);
      warp_gemm<BF16, 4, false, false>(acc, Ks, LDK, Ks, LDK, DK, 16 * (w - 2), 0);
      for (int j = 0; j < nh; ++j) mask_below<4>(acc, 16 * (w - 2), 0, Gs + j * kC, Bs + j * kC, head_tiles(j));
    } else {
      // Block (1, 0) on warp 6, block (3, 2) on warp 7.
      const int row0 = w == 6 ? 16 : 48, col0 = w == 6 ? 0 : 32;
      float acc[2][4];
      zero_acc(acc);
      warp_gemm<BF16, 2, false, false>(acc, Ks, LDK, Ks, LDK, DK, row0, col0);
      for (int j = 0; j < nh; ++j) mask_below<2>(acc, row0, col0, Gs + j * kC, Bs + j * kC, head_tiles(j));
    }
    __syncthreads();
    // Off-diagonal blocks from T (I + A) = I (off_diagonal_row): warp 3 h + i - 1 finds block
    // row i of head h. The rows need no barrier between blocks (level by level, all warps waited
    // three times for the one on the longest row).
    if (w < 3 * nh) {
      const int hd = w >= 3 ? 1 : 0, i = w - 3 * hd + 1;
      const uint16_t* Ah = head_tiles(hd);
      const uint16_t* Th = Ah + 2 * kTri;
      const float* bv = Bs + hd * kC;
      uint16_t* tout = args.t + size_t{rec0 + hd * nc} * (kC * kC);
      if (i == 1) off_diagonal_row<BF16, 1>(Ah, Th, bv, tout);
      else if (i == 2) off_diagonal_row<BF16, 2>(Ah, Th, bv, tout);
      else off_diagonal_row<BF16, 3>(Ah, Th, bv, tout);
    }
  }
}

template <bool BF16, int DK, bool DELTA>
Status launch(const KernelArgs& args, cudaStream_t stream) {
  auto kernel = chunked_prep_kernel<BF16, DK, DELTA>;
  const int nh = prep_heads(args.p);
  KernelArgs a = args;
  a.div_nc = DivU32(static_cast<uint32_t>(a.nc));
  a.div_groups = DivU32(static_cast<uint32_t>(a.p.Hkv / nh));
  a.div_kv_per_k = DivU32(static_cast<uint32_t>(a.p.Hkv / a.p.Hk));
  a.prep_nh = nh;
  const size_t bytes = prep_smem_bytes<DK>(nh);
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (prep): ") + cudaGetErrorString(err));
  }
  const int64_t blocks = (a.serving ? 1 : a.p.B) * (a.p.Hkv / nh) * a.nc;
  kernel<<<static_cast<unsigned>(blocks), kThreads, bytes, stream>>>(a);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (prep): ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

template <bool BF16, int DK>
Status launch_rule(const KernelArgs& a, cudaStream_t stream) {
  return a.p.delta ? launch<BF16, DK, true>(a, stream) : launch<BF16, DK, false>(a, stream);
}

template <bool BF16>
Status launch_dims(const KernelArgs& a, cudaStream_t stream) {
  return a.p.dk == 128 ? launch_rule<BF16, 128>(a, stream) : launch_rule<BF16, 64>(a, stream);
}

}  // namespace

Status launch_prep(const KernelArgs& a, cudaStream_t stream) {
  if (a.nc == 0 || a.p.B == 0) return Status::ok_status();
  return a.p.act_dtype == LINATTN_BFLOAT16 ? launch_dims<true>(a, stream) : launch_dims<false>(a, stream);
}

}  // namespace linattn::detail::cuda::chunked
