// The state-independent part of the chunked prefill (CHUNKED.md "Within a chunk"), for every
// (sequence, kv head, chunk) of a window at once: one CTA of 8 warps per chunk computes
// G, A = masked b exp(dG) K K^T, T = (I + A)^-1 in float32 (16x16 diagonal blocks by forward
// substitution, then the off-diagonal blocks level by level), -W = -T diag(b L) K,
// U' = T diag(b) V and, per query head, P o Q K^T; it writes them to the workspace records of
// chunked_layout.cuh for the sequential kernel. Products run on mma.sync with 16-bit operands
// and float32 accumulation; U' stays float32 and P o Q K^T is kept as hi + lo parts, because
// their rounding was the largest error term of the fused kernel. Serving calls number chunks
// globally over the sequences (chunked_layout.cuh): a CTA finds its tokens in the chunk map.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

template <int DK, int DV>
constexpr size_t prep_smem_bytes() {
  constexpr size_t ldk = DK + 8, ldv = DV + 8;
  const size_t h16 = 2 * kC * ldk + kC * ldv + 2 * kC * kLd;  // K, Q, V, T diag(b), T diag(b L)
  const size_t f32 = 2 * kC + 2 * kC * kLdf + 3 * 256;         // G, beta, A, T, block scratch
  return h16 * 2 + f32 * 4;
}

template <bool BF16, int DK, int DV, bool DELTA>
__global__ void __launch_bounds__(kThreads, 2) chunked_prep_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  constexpr int LDK = DK + 8, LDV = DV + 8;
  constexpr int kSlabs = DV / kSlab;

  extern __shared__ __align__(16) unsigned char smem[];
  uint16_t* Ks = reinterpret_cast<uint16_t*>(smem);  // [kC][LDK]
  uint16_t* Qs = Ks + kC * LDK;                       // [kC][LDK]
  uint16_t* Vs = Qs + kC * LDK;                       // [kC][LDV]
  uint16_t* Tb = Vs + kC * LDV;                       // [kC][kLd]
  uint16_t* TbL = Tb + kC * kLd;                      // [kC][kLd]
  float* Gs = reinterpret_cast<float*>(TbL + kC * kLd);
  float* Bs = Gs + kC;
  float* As = Bs + kC;      // [kC][kLdf]
  float* Ts = As + kC * kLdf;
  float* scr = Ts + kC * kLdf;

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
  const int qpk = p.q_per_kv();

  const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + p.key_head(h) * DK;
  const uint16_t* vbase = static_cast<const uint16_t*>(p.v) + b * p.v_sb + h * p.dv;
  load_tile<DK>(Ks, LDK, kbase + t0 * p.k_st, p.k_st, n, args.vec_in);
  load_tile<DV>(Vs, LDV, vbase + t0 * p.v_st, p.v_st, n, args.vec_in);
  {
    const uint16_t* qbase = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, 0) * DK;
    load_tile<DK>(Qs, LDK, qbase + t0 * p.q_st, p.q_st, n, args.vec_in);
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

  // Warp tile of the C x 64 products: 16 x 32.
  const int row0 = 16 * (w & 3), col0 = 32 * (w >> 2);
  float* uout = args.u + rec * kSlabs * kC * kSlab + w * kFrag + 4 * lane;
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
      uint16_t* wout = args.w + rec * kC * DK;
#pragma unroll
      for (int j = 0; j < NTW; ++j) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          const int r = row0 + g + 8 * hh, c = wc0 + 8 * j + 2 * t4;
          *reinterpret_cast<uint32_t*>(wout + r * DK + c) = pack2<BF16>(-acc[j][2 * hh], -acc[j][2 * hh + 1]);
        }
      }
    }
    // U' = T diag(b) V, slab by slab in the sequential kernel's fragment order.
#pragma unroll
    for (int sl = 0; sl < kSlabs; ++sl) {
      float au[4][4];
      zero_acc(au);
      warp_gemm<BF16, 4, false, true>(au, Tb, kLd, Vs + sl * kSlab, LDV, row0 + 16, row0, col0);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        *reinterpret_cast<float4*>(uout + sl * kC * kSlab + j * 128) =
            make_float4(au[j][0], au[j][1], au[j][2], au[j][3]);
      }
    }
  } else {
    // Without the delta rule the new values are V itself.
#pragma unroll
    for (int sl = 0; sl < kSlabs; ++sl) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float x[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = row0 + g + 8 * (e >> 1), c = sl * kSlab + col0 + 8 * j + 2 * t4 + (e & 1);
          x[e] = from_bits<BF16>(Vs[r * LDV + c]);
        }
        *reinterpret_cast<float4*>(uout + sl * kC * kSlab + j * 128) = make_float4(x[0], x[1], x[2], x[3]);
      }
    }
  }

  // P o Q K^T for every query head reading this state, as hi + lo parts.
  for (int jq = 0; jq < qpk; ++jq) {
    if (jq > 0) {  // the first head's Q came with K and V
      __syncthreads();
      const uint16_t* qbase = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, jq) * DK;
      load_tile<DK>(Qs, LDK, qbase + t0 * p.q_st, p.q_st, n, args.vec_in);
      cp_async_wait_all();
      __syncthreads();
    }
    float acc[4][4];
    zero_acc(acc);
    if (col0 <= row0 + 15) warp_gemm<BF16, 4, false, false>(acc, Qs, LDK, Ks, LDK, DK, row0, col0);
    uint16_t* phi = args.pm + (rec * qpk + jq) * 2 * kC * kC;
    uint16_t* plo = phi + kC * kC;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int r = row0 + g + 8 * hh, s = col0 + 8 * j + 2 * t4;
        const float p0 = s <= r ? __expf(Gs[r] - Gs[s]) * acc[j][2 * hh] : 0.f;
        const float p1 = s + 1 <= r ? __expf(Gs[r] - Gs[s + 1]) * acc[j][2 * hh + 1] : 0.f;
        const uint32_t hi = pack2<BF16>(p0, p1);
        *reinterpret_cast<uint32_t*>(phi + r * kC + s) = hi;
        *reinterpret_cast<uint32_t*>(plo + r * kC + s) =
            pack2<BF16>(p0 - from_bits<BF16>(static_cast<uint16_t>(hi & 0xffffu)),
                        p1 - from_bits<BF16>(static_cast<uint16_t>(hi >> 16)));
      }
    }
  }
}

template <bool BF16, int DK, int DV, bool DELTA>
Status launch(const KernelArgs& a, cudaStream_t stream) {
  auto kernel = chunked_prep_kernel<BF16, DK, DV, DELTA>;
  constexpr size_t bytes = prep_smem_bytes<DK, DV>();
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

template <bool BF16, int DK, int DV>
Status launch_rule(const KernelArgs& a, cudaStream_t stream) {
  return a.p.delta ? launch<BF16, DK, DV, true>(a, stream) : launch<BF16, DK, DV, false>(a, stream);
}

template <bool BF16>
Status launch_dims(const KernelArgs& a, cudaStream_t stream) {
  if (a.p.dk == 128) {
    return a.p.dv == 128 ? launch_rule<BF16, 128, 128>(a, stream) : launch_rule<BF16, 128, 64>(a, stream);
  }
  return a.p.dv == 128 ? launch_rule<BF16, 64, 128>(a, stream) : launch_rule<BF16, 64, 64>(a, stream);
}

}  // namespace

Status launch_prep(const KernelArgs& a, cudaStream_t stream) {
  if (a.nc == 0 || a.p.B == 0) return Status::ok_status();
  return a.p.act_dtype == LINATTN_BFLOAT16 ? launch_dims<true>(a, stream) : launch_dims<false>(a, stream);
}

}  // namespace linattn::detail::cuda::chunked
