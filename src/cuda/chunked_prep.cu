// The state-independent part of the chunked prefill (CHUNKED.md "Within a chunk"), for every
// (sequence, kv head, chunk) of a window at once: one CTA of 8 warps per chunk computes
// G, A = masked b exp(dG) K K^T and T = (I + A)^-1 (16x16 diagonal blocks by forward
// substitution in float32, then the off-diagonal blocks row by row on the tensor cores with
// hi + lo operands); it writes G and T diag(b) (16-bit) to the workspace records of
// chunked_layout.cuh for the sequential kernel, which applies T to the chunk's values and forms
// P o Q K^T itself. Products run on mma.sync with 16-bit operands and float32 accumulation.
// Serving calls number chunks globally over the sequences (chunked_layout.cuh): a CTA finds its
// tokens in the chunk map.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

template <int DK>
constexpr size_t prep_smem_bytes() {
  constexpr size_t ldk = DK + 8;
  // K, A hi and lo, T hi and lo; G, beta.
  const size_t h16 = kC * ldk + 4 * kC * kLd;
  return h16 * 2 + 2 * kC * 4;
}

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

// The fragments of the 16 x 16 block at (r0, c0) of a [kC][kLd] 16-bit tile as the A operand
// (a) and, for a [k][n] tile, as the B operand (b).
__device__ __forceinline__ void block_a(uint32_t (&a)[4], const uint16_t* t, int r0, int c0) {
  const int lane = threadIdx.x & 31;
  ldsm_x4(a, t + (r0 + (lane & 15)) * kLd + c0 + (lane >> 4) * 8);
}
__device__ __forceinline__ void block_b(uint32_t (&b)[4], const uint16_t* t, int r0, int c0) {
  const int lane = threadIdx.x & 31, mi = lane >> 3, r8 = lane & 7;
  ldsm_x4_t(b, t + (r0 + (mi & 1) * 8 + r8) * kLd + c0 + (mi >> 1) * 8);
}

template <bool BF16, int DK, bool DELTA>
__global__ void __launch_bounds__(kThreads, 3) chunked_prep_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  constexpr int LDK = DK + 8;

  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(smem);  // [kC][LDK]
  uint16_t* Ah = Ks + kC * LDK;                       // [kC][kLd] A hi
  uint16_t* Al = Ah + kC * kLd;                       // [kC][kLd] A lo
  uint16_t* Th = Al + kC * kLd;                       // [kC][kLd] T hi
  uint16_t* Tl = Th + kC * kLd;                       // [kC][kLd] T lo
  float* Gs = reinterpret_cast<float*>(Tl + kC * kLd);
  float* Bs = Gs + kC;

  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int64_t rec = blockIdx.x;
  int h;
  int64_t b, t0;
  int n;
  if (!args.serving) {
    const int64_t bh = rec / args.nc;
    h = static_cast<int>(bh % p.Hkv);
    b = bh / p.Hkv;
    t0 = (args.c0 + rec % args.nc) * kC;
    n = static_cast<int>(p.T - t0 < kC ? p.T - t0 : kC);
  } else {
    // Global chunk gc of the call: its tokens from the chunk map (one load; CTAs past the
    // real total find no tokens and exit).
    h = static_cast<int>(rec / args.nc);
    const int64_t gc = args.c0 + rec % args.nc;
    const ChunkTokens ct = chunk_tokens(args.chunk_map, gc);
    if (ct.n == 0) return;
    b = ct.b;
    t0 = ct.t0;
    n = ct.n;
  }

  // K feeds A only: without the delta rule the prep writes G alone.
  if constexpr (DELTA) {
    const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + p.key_head(h) * DK;
    load_tile<DK>(Ks, LDK, kbase + t0 * p.k_st, p.k_st, n, args.vec_in);
  }
  if (w == 0) {
    // G = inclusive prefix sum of g over the chunk (padding rows add 0, so G[63] = G at the
    // last real token).
    float g0 = 0.f, g1 = 0.f;
    if (p.decay) {
      const int64_t base = b * p.g_sb + h;
      if (2 * lane < n) g0 = load_as_float(p.decay, base + (t0 + 2 * lane) * p.g_st, args.gate_dtype);
      if (2 * lane + 1 < n) g1 = load_as_float(p.decay, base + (t0 + 2 * lane + 1) * p.g_st, args.gate_dtype);
    }
    float s = g0 + g1;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const float y = __shfl_up_sync(0xffffffffu, s, off);
      if (lane >= off) s += y;
    }
    Gs[2 * lane] = s - g1;
    Gs[2 * lane + 1] = s;
    float* gout = args.g + rec * kC;
    gout[2 * lane] = s - g1;
    gout[2 * lane + 1] = s;
  } else if (DELTA && (w == 2 || w == 3)) {
    const int r = tid - 64;
    Bs[r] = r < n ? load_as_float(p.beta, b * p.beta_sb + (t0 + r) * p.beta_st + (p.beta_shared ? 0 : h),
                                  args.gate_dtype)
                  : 0.f;
  }
  cp_async_wait_all();
  __syncthreads();

  // Warp tile of the C x C products: 16 x 32.
  const int row0 = 16 * (w & 3), col0 = 32 * (w >> 2);
  if constexpr (DELTA) {
    // A = strictly lower b_r exp(G_r - G_s) (k_r . k_s), as hi + lo parts, and its four
    // diagonal 16 x 16 blocks in float32 (Ad, in the K tile's space: K is read only here).
    float* Ad = reinterpret_cast<float*>(Ks);  // [4][16][16]
    // The solve reads A's blocks below the diagonal and the diagonal blocks only: the 8-column
    // groups of a warp tile wholly above them (warps 4 and 5, and the right half of warps 0
    // and 6) are not written.
    {
      float acc[4][4];
      zero_acc(acc);
      if (col0 <= row0 + 15) warp_gemm<BF16, 4, false, false>(acc, Ks, LDK, Ks, LDK, DK, row0, col0);
      __syncthreads();  // every warp is done reading K
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (col0 + 8 * j > row0 + 15) continue;  // warp-uniform
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int r = row0 + g + 8 * hh, s = col0 + 8 * j + 2 * t4;
          const float a0 = s < r ? Bs[r] * exp_ftz(Gs[r] - Gs[s]) * acc[j][2 * hh] : 0.f;
          const float a1 = s + 1 < r ? Bs[r] * exp_ftz(Gs[r] - Gs[s + 1]) * acc[j][2 * hh + 1] : 0.f;
          const uint32_t hi = pack2<true>(a0, a1);
          *reinterpret_cast<uint32_t*>(Ah + r * kLd + s) = hi;
          *reinterpret_cast<uint32_t*>(Al + r * kLd + s) = pack2_lo<true>(a0, a1, hi);
          if ((r >> 4) == (s >> 4)) {
            *reinterpret_cast<float2*>(Ad + (r >> 4) * 256 + (r & 15) * 16 + (s & 15)) = make_float2(a0, a1);
          }
        }
      }
    }
    __syncthreads();
    // T = (I + A)^-1. Diagonal 16x16 blocks: lane c of a half-warp solves column c in float32,
    // reading each row of the block four values at a time (the half-warp's loads coincide).
    if (w < 2) {
      const int blk = 2 * w + (lane >> 4), base = 16 * blk, c = lane & 15;
      const float4* ad = reinterpret_cast<const float4*>(Ad + blk * 256);
      float tc[16];
#pragma unroll
      for (int r = 0; r < 16; ++r) {
        float acc = 0.f;
#pragma unroll
        for (int s4 = 0; s4 < (r + 3) / 4; ++s4) {
          const float4 a = ad[r * 4 + s4];  // A[r][4 s4 ..], zero from column r on
          acc += a.x * tc[4 * s4];
          if (4 * s4 + 1 < r) acc += a.y * tc[4 * s4 + 1];
          if (4 * s4 + 2 < r) acc += a.z * tc[4 * s4 + 2];
          if (4 * s4 + 3 < r) acc += a.w * tc[4 * s4 + 3];
        }
        tc[r] = r < c ? 0.f : (r == c ? 1.f : -acc);
        const uint16_t hi = to_bits<true>(tc[r]);
        Th[(base + r) * kLd + base + c] = hi;
        Tl[(base + r) * kLd + base + c] = to_bits<true>(tc[r] - from_bits<true>(hi));
      }
    }
    __syncthreads();
    // Off-diagonal blocks from T (I + A) = I: T_ij = -(sum_{m=j+1}^{i} T_im A_mj) T_jj. Warp
    // i - 1 walks block row i from the diagonal out (j = i - 1 .. 0): the T_im it needs are
    // its own earlier blocks and T_ii, so the rows need no barrier between blocks (level by
    // level, all warps waited three times for the one on the longest row).
    if (w < 3) {
      const int i = w + 1;
      for (int j = i - 1; j >= 0; --j) {
        float x[2][4] = {};
        for (int m = j + 1; m <= i; ++m) {
          uint32_t ah[4], al[4], bh[4], bl[4];
          block_a(ah, Th, 16 * i, 16 * m);
          block_a(al, Tl, 16 * i, 16 * m);
          block_b(bh, Ah, 16 * m, 16 * j);
          block_b(bl, Al, 16 * m, 16 * j);
          mma_split(x, ah, al, bh, bl);
        }
        // X in accumulator layout is the A operand of X T_jj.
        uint32_t xh[4], xl[4], bh[4], bl[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const float x0 = x[q >> 1][2 * (q & 1)], x1 = x[q >> 1][2 * (q & 1) + 1];
          xh[q] = pack2<true>(x0, x1);
          xl[q] = pack2_lo<true>(x0, x1, xh[q]);
        }
        block_b(bh, Th, 16 * j, 16 * j);
        block_b(bl, Tl, 16 * j, 16 * j);
        float y[2][4] = {};
        mma_split(y, xh, xl, bh, bl);
#pragma unroll
        for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
          for (int hh = 0; hh < 2; ++hh) {
            const int r = 16 * i + g + 8 * hh, c = 16 * j + 8 * nt + 2 * t4;
            const float y0 = -y[nt][2 * hh], y1 = -y[nt][2 * hh + 1];
            const uint32_t hi = pack2<true>(y0, y1);
            *reinterpret_cast<uint32_t*>(Th + r * kLd + c) = hi;
            *reinterpret_cast<uint32_t*>(Tl + r * kLd + c) = pack2_lo<true>(y0, y1, hi);
          }
        }
        __syncwarp();  // T_ij for this warp's next blocks
      }
    }
    __syncthreads();
    // T diag(b) as 16-bit operands (zero above the diagonal) to the record: eight elements
    // per thread and step, read as 16-byte pieces of T's hi and lo parts (bfloat16 pairs in
    // 32-bit words) and stored as one 16-byte piece.
    uint16_t* tout = args.t + rec * kC * kC;
    for (int e = tid; e < kC * kC / 8; e += kThreads) {
      const int r = e >> 3, s0 = 8 * (e & 7);
      uint4 piece = make_uint4(0u, 0u, 0u, 0u);
      if (s0 <= r) {
        const uint4 hv = *reinterpret_cast<const uint4*>(Th + r * kLd + s0);
        const uint4 lv = *reinterpret_cast<const uint4*>(Tl + r * kLd + s0);
        const float4 b0 = *reinterpret_cast<const float4*>(Bs + s0);
        const float4 b1 = *reinterpret_cast<const float4*>(Bs + s0 + 4);
        const uint32_t hw[4] = {hv.x, hv.y, hv.z, hv.w}, lw[4] = {lv.x, lv.y, lv.z, lv.w};
        const float bb[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
        uint32_t out[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int s = s0 + 2 * q;
          const float t0v = bf16_bits_to_float(static_cast<uint16_t>(hw[q])) +
                            bf16_bits_to_float(static_cast<uint16_t>(lw[q]));
          const float t1v = bf16_bits_to_float(static_cast<uint16_t>(hw[q] >> 16)) +
                            bf16_bits_to_float(static_cast<uint16_t>(lw[q] >> 16));
          out[q] = pack2<BF16>(s <= r ? t0v * bb[2 * q] : 0.f, s + 1 <= r ? t1v * bb[2 * q + 1] : 0.f);
        }
        piece = make_uint4(out[0], out[1], out[2], out[3]);
      }
      *reinterpret_cast<uint4*>(tout + r * kC + s0) = piece;
    }
  }
}

template <bool BF16, int DK, bool DELTA>
Status launch(const KernelArgs& a, cudaStream_t stream) {
  auto kernel = chunked_prep_kernel<BF16, DK, DELTA>;
  constexpr size_t bytes = prep_smem_bytes<DK>();
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (prep): ") + cudaGetErrorString(err));
  }
  const int64_t blocks = (a.serving ? 1 : a.p.B) * a.p.Hkv * a.nc;
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
