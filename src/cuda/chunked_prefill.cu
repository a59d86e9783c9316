// Chunked (WY-form) prefill on tensor cores, fused into one kernel (CHUNKED.md).
//
// One CTA of 8 warps owns (sequence b, kv head h, a 64-column slab of d_v) and walks the chunks
// of C = 64 tokens in order, with its d_k x 64 slice of the state S in float32 registers. Per
// chunk everything stays on chip: A = masked b exp(dG) K K^T, T = (I + A)^-1 in float32 (16x16
// diagonal blocks by forward substitution, then the off-diagonal blocks level by level),
// W = T diag(b L) K and U' = T diag(b) V, U = U' - W S, the outputs of every query head that
// reads this state, and S <- L_C S + K^T diag(exp(G_C - G)) U. Products run on mma.sync with
// 16-bit operands (the activation type) and float32 accumulation. P o Q K^T and the float32
// state S feed the tensor cores as hi + lo 16-bit parts: their rounding was the largest error
// term (P o Q K^T with decay, S without).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_mma.cuh"
#include "cuda/chunked_options.cuh"
#include "cuda/chunked_prefill.hpp"

namespace linattn::detail::cuda {
namespace chunked {
namespace {

constexpr int kC = 64;        // tokens per chunk
constexpr int kSlab = 64;     // value columns per CTA
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kLd = kSlab + 8;  // row stride of 64-wide 16-bit tiles (+8: conflict-free ldmatrix)
constexpr int kLdf = kC + 1;    // row stride of the float32 C x C tiles

struct KernelArgs {
  LinearAttentionParams p;
  bool vec_in;     // q, k, v rows are 16-byte aligned: 16-byte loads
  bool vec_out;    // output rows are 4-byte aligned: paired stores
  bool split;      // hi + lo state operands
};

template <int DK, bool DELTA>
constexpr size_t smem_bytes() {
  constexpr size_t ldk = DK + 8;
  size_t h16 = 4 * kC * ldk          // K, Q (two buffers each: the next chunk is prefetched)
               + 2 * kC * kLd        // V slab (two buffers)
               + 2 * DK * kLd        // S hi, lo
               + 3 * kC * kLd;       // U, U scaled to the chunk end, masked Q K^T
  size_t f32 = 2 * kC;               // G, beta
  if (!DELTA) f32 += kC * kLd / 2;   // low part of P o Q K^T (shares A's space with the delta rule)
  if (DELTA) {
    h16 += kC * ldk + 2 * kC * kLd;  // -W, T diag(b), T diag(b L)
    f32 += 2 * kC * kLdf + 3 * 256;  // A, T, block scratch
  }
  return h16 * 2 + f32 * 4;
}

// Rows [0, n) of a 64 x COLS tile from global memory (row stride `stride` elements), zeros below.
// Aligned rows go through cp.async (visible after cp_async_wait_all and a barrier); others are
// copied synchronously.
template <int COLS>
__device__ __forceinline__ void load_tile(uint16_t* dst, int ld, const uint16_t* src,
                                          int64_t stride, int n, bool vec) {
  constexpr int kVpr = COLS / 8;
  if (vec) {
#pragma unroll
    for (int k = 0; k < kC * kVpr / kThreads; ++k) {
      const int i = threadIdx.x + k * kThreads;
      const int r = i / kVpr, cv = (i % kVpr) * 8;
      cp_async16(dst + r * ld + cv, src + (r < n ? r * stride + cv : 0), r < n);
    }
    return;
  }
  for (int i = threadIdx.x; i < kC * kVpr; i += kThreads) {
    const int r = i / kVpr, cv = (i % kVpr) * 8;
    uint4 val = make_uint4(0u, 0u, 0u, 0u);
    if (r < n) {
      const uint16_t* s = src + r * stride + cv;
      {
        val.x = s[0] | (static_cast<uint32_t>(s[1]) << 16);
        val.y = s[2] | (static_cast<uint32_t>(s[3]) << 16);
        val.z = s[4] | (static_cast<uint32_t>(s[5]) << 16);
        val.w = s[6] | (static_cast<uint32_t>(s[7]) << 16);
      }
    }
    *reinterpret_cast<uint4*>(dst + r * ld + cv) = val;
  }
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

template <bool BF16, int DK, bool DELTA>
__global__ void __launch_bounds__(kThreads, 1) chunked_prefill_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  constexpr int LDK = DK + 8;
  // State slice per warp: 16 rows x 64 columns (d_k = 128) or 16 x 32 (d_k = 64).
  constexpr int NTS = DK == 128 ? 8 : 4;

  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* Kbuf = reinterpret_cast<uint16_t*>(smem);  // [2][kC][LDK]
  uint16_t* Qbuf = Kbuf + 2 * kC * LDK;                 // [2][kC][LDK]
  uint16_t* Vbuf = Qbuf + 2 * kC * LDK;                 // [2][kC][kLd]
  uint16_t* Shi = Vbuf + 2 * kC * kLd;
  uint16_t* Slo = Shi + DK * kLd;
  uint16_t* Us = Slo + DK * kLd;
  uint16_t* Uds = Us + kC * kLd;
  uint16_t* Pm = Uds + kC * kLd;
  uint16_t* Wn = Pm + kC * kLd;        // DELTA only from here on
  uint16_t* Tb = Wn + kC * LDK;
  uint16_t* TbL = Tb + kC * kLd;
  float* Gs = reinterpret_cast<float*>(DELTA ? TbL + kC * kLd : Wn);
  float* Bs = Gs + kC;
  float* As = Bs + kC;
  float* Ts = As + kC * kLdf;
  float* scr = Ts + kC * kLdf;
  // Low 16-bit part of P o Q K^T: A is free once T is built.
  uint16_t* Plo = reinterpret_cast<uint16_t*>(Bs + kC);

  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int slabs = p.dv / kSlab;
  const int slab = blockIdx.x % slabs;
  const int h = (blockIdx.x / slabs) % p.Hkv;
  const int64_t b = blockIdx.x / (slabs * p.Hkv);
  const int vcol = slab * kSlab;

  const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + p.key_head(h) * DK;
  const uint16_t* vbase = static_cast<const uint16_t*>(p.v) + b * p.v_sb + h * p.dv + vcol;
  const int qpk = p.q_per_kv();

  // Warp tiles: C x 64 products (16 x 32 per warp) and the state slice.
  const int row0 = 16 * (w & 3), col0 = 32 * (w >> 2);
  const int srow0 = DK == 128 ? 16 * w : 16 * (w & 3);
  const int scol0 = DK == 128 ? 0 : 32 * (w >> 2);

  float accS[NTS][4];
#pragma unroll
  for (int j = 0; j < NTS; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = srow0 + g + 8 * (e >> 1), c = vcol + scol0 + 8 * j + 2 * t4 + (e & 1);
      accS[j][e] = p.past ? load_as_float(p.past, b * p.past_sb + h * p.past_sh + i * p.past_sk + c,
                                          p.past_dtype)
                          : 0.f;
    }
  }
  write_state<BF16>(accS, Shi, Slo, srow0, scol0, args.split);

  const int64_t nchunks = (p.T + kC - 1) / kC;
  const uint16_t* qbase0 = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, 0) * DK;
  // Prefetch of chunk c: K, V and the first query head's Q into buffer c & 1 (asynchronous),
  // g (warp 0, two tokens a lane) and beta (warps 2-3) into registers.
  float gn0 = 0.f, gn1 = 0.f, bn = 0.f;
  auto prefetch = [&](int64_t c) {
    const int64_t t0 = c * kC;
    const int n = static_cast<int>(p.T - t0 < kC ? p.T - t0 : kC);
    const int buf = static_cast<int>(c & 1);
    load_tile<DK>(Kbuf + buf * kC * LDK, LDK, kbase + t0 * p.k_st, p.k_st, n, args.vec_in);
    load_tile<kSlab>(Vbuf + buf * kC * kLd, kLd, vbase + t0 * p.v_st, p.v_st, n, args.vec_in);
    load_tile<DK>(Qbuf + buf * kC * LDK, LDK, qbase0 + t0 * p.q_st, p.q_st, n, args.vec_in);
    if (w == 0) {
      gn0 = gn1 = 0.f;
      if (p.decay) {
        const int64_t base = b * p.g_sb + h;
        if (2 * lane < n) gn0 = load_as_float(p.decay, base + (t0 + 2 * lane) * p.g_st, p.act_dtype);
        if (2 * lane + 1 < n) gn1 = load_as_float(p.decay, base + (t0 + 2 * lane + 1) * p.g_st, p.act_dtype);
      }
    } else if (DELTA && (w == 2 || w == 3)) {
      const int r = tid - 64;
      bn = r < n ? load_as_float(p.beta, b * p.beta_sb + (t0 + r) * p.beta_st + (p.beta_shared ? 0 : h),
                                 p.act_dtype)
                 : 0.f;
    }
  };
  if (nchunks > 0) prefetch(0);
  for (int64_t ch = 0; ch < nchunks; ++ch) {
    const int64_t t0 = ch * kC;
    const int n = static_cast<int>(p.T - t0 < kC ? p.T - t0 : kC);
    const int buf = static_cast<int>(ch & 1);
    uint16_t* Ks = Kbuf + buf * kC * LDK;
    uint16_t* Qs = Qbuf + buf * kC * LDK;
    uint16_t* Vs = Vbuf + buf * kC * kLd;
    if (w == 0) {
      // G = inclusive prefix sum of g over the chunk (padding rows add 0, so G[63] = G at the
      // last real token).
      const float g0 = gn0, g1 = gn1;
      float s = g0 + g1;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const float y = __shfl_up_sync(0xffffffffu, s, off);
        if (lane >= off) s += y;
      }
      Gs[2 * lane] = s - g1;
      Gs[2 * lane + 1] = s;
    } else if (DELTA && (w == 2 || w == 3)) {
      Bs[tid - 64] = bn;
    }
    cp_async_wait_all();
    __syncthreads();
    // Buffer ch+1 & 1 was last read during chunk ch-1, which ended with a barrier.
    if (ch + 1 < nchunks) prefetch(ch + 1);

    const float gend = Gs[kC - 1];
    const uint16_t* Ucur = Vs;  // the new values: V itself without the delta rule
    if constexpr (DELTA) {
      // A = strictly lower b_r exp(G_r - G_s) (k_r . k_s).
      {
        float acc[4][4];
        zero_acc(acc);
        if (col0 <= row0 + 15) warp_gemm<BF16, 4, false, false>(acc, Ks, LDK, Ks, LDK, DK, row0, col0);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int r = row0 + g + 8 * (e >> 1), s = col0 + 8 * j + 2 * t4 + (e & 1);
            As[r * kLdf + s] = s < r ? Bs[r] * __expf(Gs[r] - Gs[s]) * acc[j][e] : 0.f;
          }
        }
      }
      __syncthreads();
      // T = (I + A)^-1. Diagonal 16x16 blocks: lane c of a half-warp solves column c.
      if (w < 2) {
        const int base = 16 * (2 * w + (lane >> 4)), c = lane & 15;
        float tc[16];
#pragma unroll
        for (int r = 0; r < 16; ++r) {
          float acc = 0.f;
#pragma unroll
          for (int s = 0; s < r; ++s) acc += As[(base + r) * kLdf + base + s] * tc[s];
          tc[r] = r < c ? 0.f : (r == c ? 1.f : -acc);
          Ts[(base + r) * kLdf + base + c] = tc[r];
        }
      }
      __syncthreads();
      // Off-diagonal blocks by distance d from the diagonal:
      // T_ij = -T_ii sum_{m=j}^{i-1} A_im T_mj.
      for (int d = 1; d < 4; ++d) {
        const int nb = 4 - d;
        for (int e = tid; e < nb * 256; e += kThreads) {
          const int j = e >> 8, i = j + d, r = (e >> 4) & 15, c = e & 15;
          const float* arow = As + (16 * i + r) * kLdf;
          float acc = 0.f;
          for (int m0 = 16 * j; m0 < 16 * i; m0 += 16) {
#pragma unroll
            for (int m = m0; m < m0 + 16; ++m) acc += arow[m] * Ts[m * kLdf + 16 * j + c];
          }
          scr[e] = acc;
        }
        __syncthreads();
        for (int e = tid; e < nb * 256; e += kThreads) {
          const int j = e >> 8, i = j + d, r = (e >> 4) & 15, c = e & 15;
          const float* trow = Ts + (16 * i + r) * kLdf + 16 * i;
          const float* sc = scr + j * 256 + c;
          float acc = 0.f;
#pragma unroll
          for (int q = 0; q < 16; ++q) acc += trow[q] * sc[q * 16];
          Ts[(16 * i + r) * kLdf + 16 * j + c] = -acc;
        }
        __syncthreads();
      }
      // T diag(b) and T diag(b L) as 16-bit operands (zero above the diagonal).
      for (int e = tid; e < kC * kC / 2; e += kThreads) {
        const int r = e >> 5, s = 2 * (e & 31);
        const float t0v = s <= r ? Ts[r * kLdf + s] : 0.f;
        const float t1v = s + 1 <= r ? Ts[r * kLdf + s + 1] : 0.f;
        const float b0 = Bs[s], b1 = Bs[s + 1];
        *reinterpret_cast<uint32_t*>(Tb + r * kLd + s) = pack2<BF16>(t0v * b0, t1v * b1);
        *reinterpret_cast<uint32_t*>(TbL + r * kLd + s) =
            pack2<BF16>(t0v * b0 * __expf(Gs[s]), t1v * b1 * __expf(Gs[s + 1]));
      }
      __syncthreads();
      // -W = -T diag(b L) K (the rows of T are zero past the diagonal: K range row0 + 16).
      {
        constexpr int NTW = DK / 16;
        const int wc0 = (DK / 2) * (w >> 2);
        float acc[NTW][4];
        zero_acc(acc);
        warp_gemm<BF16, NTW, false, true>(acc, TbL, kLd, Ks, LDK, row0 + 16, row0, wc0);
#pragma unroll
        for (int j = 0; j < NTW; ++j) {
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int r = row0 + g + 8 * hh, c = wc0 + 8 * j + 2 * t4;
            *reinterpret_cast<uint32_t*>(Wn + r * LDK + c) =
                pack2<BF16>(-acc[j][2 * hh], -acc[j][2 * hh + 1]);
          }
        }
      }
      float au[4][4];
      zero_acc(au);
      warp_gemm<BF16, 4, false, true>(au, Tb, kLd, Vs, kLd, row0 + 16, row0, col0);
      __syncthreads();
      // U = U' - W S.
      warp_gemm<BF16, 4, false, true>(au, Wn, LDK, Shi, kLd, DK, row0, col0);
      if (args.split) warp_gemm<BF16, 4, false, true>(au, Wn, LDK, Slo, kLd, DK, row0, col0);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int r = row0 + g + 8 * hh, c = col0 + 8 * j + 2 * t4;
          const float x0 = au[j][2 * hh], x1 = au[j][2 * hh + 1];
          const float f = __expf(gend - Gs[r]);
          *reinterpret_cast<uint32_t*>(Us + r * kLd + c) = pack2<BF16>(x0, x1);
          *reinterpret_cast<uint32_t*>(Uds + r * kLd + c) = pack2<BF16>(x0 * f, x1 * f);
        }
      }
      Ucur = Us;
    } else {
      for (int e = tid; e < kC * kSlab / 2; e += kThreads) {
        const int r = e >> 5, c = 2 * (e & 31);
        const uint32_t v2 = *reinterpret_cast<const uint32_t*>(Vs + r * kLd + c);
        const float f = __expf(gend - Gs[r]);
        *reinterpret_cast<uint32_t*>(Uds + r * kLd + c) =
            pack2<BF16>(from_bits<BF16>(static_cast<uint16_t>(v2 & 0xffffu)) * f,
                        from_bits<BF16>(static_cast<uint16_t>(v2 >> 16)) * f);
      }
    }
    __syncthreads();

    // Outputs of every query head reading this state: scale (diag(L) Q S + (P o Q K^T) U).
    for (int jq = 0; jq < qpk; ++jq) {
      const int qh = p.query_head(h, jq), oh = p.output_head(h, jq);
      if (jq > 0) {  // the first head's Q came with the prefetch
        const uint16_t* qbase = static_cast<const uint16_t*>(p.q) + b * p.q_sb + qh * DK;
        load_tile<DK>(Qs, LDK, qbase + t0 * p.q_st, p.q_st, n, args.vec_in);
        cp_async_wait_all();
        __syncthreads();
      }
      {
        float acc[4][4];
        zero_acc(acc);
        if (col0 <= row0 + 15) warp_gemm<BF16, 4, false, false>(acc, Qs, LDK, Ks, LDK, DK, row0, col0);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int r = row0 + g + 8 * hh, s = col0 + 8 * j + 2 * t4;
            const float p0 = s <= r ? __expf(Gs[r] - Gs[s]) * acc[j][2 * hh] : 0.f;
            const float p1 = s + 1 <= r ? __expf(Gs[r] - Gs[s + 1]) * acc[j][2 * hh + 1] : 0.f;
            const uint32_t hi = pack2<BF16>(p0, p1);
            *reinterpret_cast<uint32_t*>(Pm + r * kLd + s) = hi;
            *reinterpret_cast<uint32_t*>(Plo + r * kLd + s) =
                pack2<BF16>(p0 - from_bits<BF16>(static_cast<uint16_t>(hi & 0xffffu)),
                            p1 - from_bits<BF16>(static_cast<uint16_t>(hi >> 16)));
          }
        }
      }
      float ao[4][4];
      zero_acc(ao);
      warp_gemm<BF16, 4, false, true>(ao, Qs, LDK, Shi, kLd, DK, row0, col0);
      if (args.split) warp_gemm<BF16, 4, false, true>(ao, Qs, LDK, Slo, kLd, DK, row0, col0);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const float l = __expf(Gs[row0 + g + 8 * hh]);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          ao[j][2 * hh] *= l;
          ao[j][2 * hh + 1] *= l;
        }
      }
      __syncthreads();
      // P o Q K^T as hi + lo: its rounding would otherwise be the largest error term.
      warp_gemm<BF16, 4, false, true>(ao, Pm, kLd, Ucur, kLd, row0 + 16, row0, col0);
      warp_gemm<BF16, 4, false, true>(ao, Plo, kLd, Ucur, kLd, row0 + 16, row0, col0);
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
      __syncthreads();
    }

    // S <- exp(G_C) S + K^T diag(exp(G_C - G)) U.
    const float lend = __expf(gend);
#pragma unroll
    for (int j = 0; j < NTS; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) accS[j][e] *= lend;
    }
    warp_gemm<BF16, NTS, true, true>(accS, Ks, LDK, Uds, kLd, kC, srow0, scol0);
    write_state<BF16>(accS, Shi, Slo, srow0, scol0, args.split);
    __syncthreads();
  }

#pragma unroll
  for (int j = 0; j < NTS; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int i = srow0 + g + 8 * (e >> 1), c = vcol + scol0 + 8 * j + 2 * t4 + (e & 1);
      store_from_float(p.present, b * p.pres_sb + h * p.pres_sh + i * p.pres_sk + c,
                       p.present_dtype, accS[j][e]);
    }
  }
}

template <bool BF16, int DK, bool DELTA>
Status launch(const KernelArgs& a, cudaStream_t stream) {
  auto kernel = chunked_prefill_kernel<BF16, DK, DELTA>;
  constexpr size_t bytes = smem_bytes<DK, DELTA>();
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill: ") + cudaGetErrorString(err));
  }
  const int64_t blocks = a.p.B * a.p.Hkv * (a.p.dv / kSlab);
  kernel<<<static_cast<unsigned>(blocks), kThreads, bytes, stream>>>(a);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill: ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

template <bool BF16, int DK>
Status launch_rule(const KernelArgs& a, cudaStream_t stream) {
  return a.p.delta ? launch<BF16, DK, true>(a, stream) : launch<BF16, DK, false>(a, stream);
}

bool aligned(const void* ptr, size_t bytes) {
  return reinterpret_cast<uintptr_t>(ptr) % bytes == 0;
}

bool state_dtype_ok(linattn_dtype t) {
  return t == LINATTN_FLOAT32 || t == LINATTN_FLOAT16 || t == LINATTN_BFLOAT16;
}

}  // namespace
}  // namespace chunked

bool chunked_prefill_supports(const LinearAttentionParams& p) {
  // float32 activations stay on the exact recurrent kernel; per-key-dim decay would need
  // sub-chunk reference points (CHUNKED.md) and also takes the recurrent kernel.
  if (p.act_dtype != LINATTN_BFLOAT16 && p.act_dtype != LINATTN_FLOAT16) return false;
  if ((p.dk != 64 && p.dk != 128) || (p.dv != 64 && p.dv != 128)) return false;
  if (p.decay != nullptr && p.decay_per_key_dim) return false;
  if (p.past != nullptr && !chunked::state_dtype_ok(p.past_dtype)) return false;
  return chunked::state_dtype_ok(p.present_dtype);
}

size_t chunked_prefill_workspace_bytes(const LinearAttentionParams&) { return 0; }

Status chunked_prefill_with(const LinearAttentionParams& p, const Exec& e, const ChunkedOptions& o) {
  if (!chunked_prefill_supports(p)) return unsupported("chunked prefill: unsupported configuration");
  if (p.B == 0) return Status::ok_status();
  chunked::KernelArgs a;
  a.p = p;
  a.split = o.split_state;
  a.vec_in = chunked::aligned(p.q, 16) && chunked::aligned(p.k, 16) && chunked::aligned(p.v, 16) &&
             p.q_sb % 8 == 0 && p.q_st % 8 == 0 && p.k_sb % 8 == 0 && p.k_st % 8 == 0 &&
             p.v_sb % 8 == 0 && p.v_st % 8 == 0;
  a.vec_out = chunked::aligned(p.out, 4) && p.o_sb % 2 == 0 && p.o_st % 2 == 0;
  auto stream = static_cast<cudaStream_t>(e.stream);
  const bool bf16 = p.act_dtype == LINATTN_BFLOAT16;
  if (p.dk == 128) {
    return bf16 ? chunked::launch_rule<true, 128>(a, stream) : chunked::launch_rule<false, 128>(a, stream);
  }
  return bf16 ? chunked::launch_rule<true, 64>(a, stream) : chunked::launch_rule<false, 64>(a, stream);
}

Status chunked_prefill(const LinearAttentionParams& p, const Exec& e) {
  return chunked_prefill_with(p, e, ChunkedOptions{});
}

}  // namespace linattn::detail::cuda
