// Token-recurrent LinearAttention kernel: serves decode (T = 1), speculative/short calls and
// any prefill the chunked path does not take.
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
// a call costs one memory round trip. Decode calls with 16-column slabs (one token, one query
// head per kv head) take decode_kernel below instead: one barrier per slab and the next slab's
// loads issued before the current one's sums.
#include <cstdint>
#include <string>

#include "cuda/cuda_common.cuh"
#include "cuda/linear_attention.hpp"

namespace linattn::detail::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kColLanes = 4;
constexpr int kRowLanes = 32 / kColLanes;
constexpr int kRowsPerPass = kRowLanes * kWarps;  // key rows covered by one register row
constexpr int kMaxRowsPerThread = 16;             // d_k <= 512
// Grids of at least this many 32-column slabs take CPT = 8 (16 per SM on an H100: enough
// blocks to fill every SM several times over).
constexpr int64_t kWideSlabMinBlocks = 2048;

// Sum over all key rows of the block for this thread's CPT columns; every thread gets the
// sums. red is one of two buffers used alternately: a buffer is rewritten only after the
// barrier of the next sum, which every reader of its previous contents has passed.
template <int CPT>
__device__ __forceinline__ void column_sum(float part[CPT], float (*red)[kColLanes * CPT], int warp,
                                           int rl, int cl) {
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
#pragma unroll
    for (int off = kColLanes; off < 32; off <<= 1) part[j] += __shfl_xor_sync(0xffffffffu, part[j], off);
  }
  if (rl == 0) {
#pragma unroll
    for (int j = 0; j < CPT; ++j) red[warp][cl * CPT + j] = part[j];
  }
  __syncthreads();
#pragma unroll
  for (int j = 0; j < CPT; ++j) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) s += red[w][cl * CPT + j];
    part[j] = s;
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

// RPT: register rows per thread (d_k <= RPT * 32). CPT: columns per thread (4 or 8). FIXED:
// d_k == RPT * 32, d_v a multiple of the slab and the states CPT-element aligned, so no guards
// and vector state accesses.
template <int RPT, int CPT, bool FIXED, linattn_dtype AT>
__global__ void __launch_bounds__(kThreads, FIXED ? 8 : 1)
    recurrent_kernel(const LinearAttentionParams p, int nslab) {
  constexpr int kSlab = kColLanes * CPT;
  __shared__ float red[2][kWarps][kSlab];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cl = lane % kColLanes, rl = lane / kColLanes;
  // The grid has fewer than 2^31 blocks (checked at launch): 32-bit division is enough.
  const uint32_t blk = blockIdx.x;
  const int slab = static_cast<int>(blk % static_cast<uint32_t>(nslab));
  const uint32_t bh = blk / static_cast<uint32_t>(nslab);
  const int h = static_cast<int>(bh % static_cast<uint32_t>(p.Hkv));
  const int64_t b = bh / static_cast<uint32_t>(p.Hkv);
  const int dk = FIXED ? RPT * kRowsPerPass : p.dk;
  const int dv = p.dv;
  const int c0 = slab * kSlab + cl * CPT;

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

  // State slab in registers (zeros without past_state).
  float S[RPT][CPT];
  const int64_t past_base = b * p.past_sb + h * p.past_sh + c0;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
#pragma unroll
    for (int j = 0; j < CPT; ++j) S[i][j] = 0.f;
    if (p.past != nullptr && row_ok[i]) {
      const int64_t at = past_base + row[i] * p.past_sk;
      if (FIXED) {
        ld_state<CPT>(p.past, at, p.past_dtype, S[i]);
      } else {
#pragma unroll
        for (int j = 0; j < CPT; ++j)
          if (col_ok[j]) S[i][j] = ld_rt(p.past, at + j, p.past_dtype);
      }
    }
  }

  const int kh = p.key_head(h);
  const int G = p.q_per_kv();
  int buf = 0;
  for (int64_t t = 0; t < p.T; ++t) {
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
    if (p.gated && !p.decay_per_key_dim) a_head = expf(ld<AT>(p.decay, gbase + h));
    const float beta =
        p.delta ? ld<AT>(p.beta, b * p.beta_sb + t * p.beta_st + (p.beta_shared ? 0 : h)) : 0.f;

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

    // 2. delta, gated_delta: r = S^T k on the decayed S, u = beta (v - r). 3. otherwise u = v.
    float u[CPT];
    if (p.delta) {
      float r[CPT];
#pragma unroll
      for (int j = 0; j < CPT; ++j) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < RPT; ++i) s = fmaf(S[i][j], kr[i], s);
        r[j] = s;
      }
      column_sum<CPT>(r, red[buf], warp, rl, cl);
      buf ^= 1;
#pragma unroll
      for (int j = 0; j < CPT; ++j) u[j] = beta * (vc[j] - r[j]);
    } else {
#pragma unroll
      for (int j = 0; j < CPT; ++j) u[j] = vc[j];
    }
    // S <- S + k u^T
#pragma unroll
    for (int i = 0; i < RPT; ++i)
#pragma unroll
      for (int j = 0; j < CPT; ++j) S[i][j] = fmaf(kr[i], u[j], S[i][j]);

    // 4. o = scale * S^T q for every output head that reads this state; the next head's q is
    // loaded before this head's sum so that its latency hides behind the barrier.
    for (int jq = 0; jq < G; ++jq) {
      float o[CPT];
#pragma unroll
      for (int j = 0; j < CPT; ++j) {
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < RPT; ++i) s = fmaf(S[i][j], qr[i], s);
        o[j] = s;
      }
      if (jq + 1 < G) {
        const int64_t qn = qrow + static_cast<int64_t>(p.query_head(h, jq + 1)) * dk;
#pragma unroll
        for (int i = 0; i < RPT; ++i) qr[i] = row_ok[i] ? ld<AT>(p.q, qn + row[i]) : 0.f;
      }
      column_sum<CPT>(o, red[buf], warp, rl, cl);
      buf ^= 1;
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
  // past.
  if (p.present == nullptr) return;
  const int64_t pres_base = b * p.pres_sb + h * p.pres_sh + c0;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    if (!row_ok[i]) continue;
    const int64_t at = pres_base + row[i] * p.pres_sk;
    if (FIXED) {
      st_state<CPT>(p.present, at, p.present_dtype, S[i]);
    } else {
#pragma unroll
      for (int j = 0; j < CPT; ++j)
        if (col_ok[j]) st_rt(p.present, at + j, p.present_dtype, S[i][j]);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decode (T = 1) kernel. With a single token the two column sums fold into one: with a_i the
// decay of key row i (1 without gating), S' = diag(a) S + k u^T gives
//   r = S^T (a o k),  u = beta (v - r) (or v),  o = S'^T q = S^T (a o q) + (k . q) u,
// so S^T (a o k), S^T (a o q) and k . q are reduced together behind one barrier. The block is
// persistent: it walks slabs w, w + grid, ... and issues the next slab's state, q, k, v, decay
// and beta loads before the current slab's sums, so the memory pipe stays busy while the
// block computes (the phased kernel above leaves it idle during its sums). The state stays
// packed in registers as loaded (half the registers for 16-bit states) and is unpacked at use;
// the unpacking is exact, so the result rounds the state once, as the general kernel does.
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
};

__device__ __forceinline__ DecodeSlab decode_slab(const LinearAttentionParams& p, uint32_t w,
                                                  uint32_t nslab, int slab_cols, int cl, int cpt) {
  DecodeSlab d;
  const uint32_t bh = w / nslab;
  d.c0 = static_cast<int>(w - bh * nslab) * slab_cols + cl * cpt;
  d.h = static_cast<int>(bh % static_cast<uint32_t>(p.Hkv));
  d.b = bh / static_cast<uint32_t>(p.Hkv);
  return d;
}

template <int RPT, int CPT, linattn_dtype AT, linattn_dtype PT>
__device__ __forceinline__ void decode_load(const LinearAttentionParams& p, const DecodeSlab& d,
                                            const int row[RPT], DecodeInputs<RPT, CPT, PT>& in) {
  constexpr int dk = RPT * kRowsPerPass;
  constexpr int kWords = DecodeInputs<RPT, CPT, PT>::kWords;
#pragma unroll
  for (int i = 0; i < RPT; ++i) {
    if (p.past != nullptr) {
      const char* at = static_cast<const char*>(p.past) +
                       (d.b * p.past_sb + d.h * p.past_sh + d.c0 + row[i] * p.past_sk) * state_bytes<PT>();
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
}

// Four resident blocks of 128 threads: 128 registers hold two slabs' packed state (the
// current and the prefetched one) at CPT = 4 for every state dtype without spilling (95 to 116
// registers on sm_90).
//
// Used for the 16-column slabs (grids below kWideSlabMinBlocks 32-column slabs) only. The same
// kernel at CPT = 8 (16-bit states; float32 would spill at 128 registers) was measured on the
// H100 for the reference decode shape with bf16 state: 63.2 us at B = 64 (the phased kernel:
// 69.5) but 279.0 us at B = 256 (phased: 267.8), so large grids keep the phased kernel.
constexpr int kDecodeBlocksPerSm = 4;

// Requires T == 1, one query head per kv head, d_k == RPT * 32, d_v a multiple of the slab and
// CPT-aligned states (the FIXED conditions of the general kernel).
template <int RPT, int CPT, linattn_dtype AT, linattn_dtype PT>
__global__ void __launch_bounds__(kThreads, kDecodeBlocksPerSm)
    decode_kernel(const LinearAttentionParams p, uint32_t nslab, uint32_t nwork) {
  constexpr int kSlab = kColLanes * CPT;
  constexpr int kSums = 2 * CPT;  // S^T (a o k) and S^T (a o q) for the thread's columns
  // [buffer][warp][column lane x kSums, then k . q]
  __shared__ float red[2][kWarps][kColLanes * kSums + 1];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cl = lane % kColLanes, rl = lane / kColLanes;
  int row[RPT];
#pragma unroll
  for (int i = 0; i < RPT; ++i) row[i] = i * kRowsPerPass + warp * kRowLanes + rl;

  uint32_t w = blockIdx.x;
  DecodeSlab cur_slab = decode_slab(p, w, nslab, kSlab, cl, CPT);
  DecodeInputs<RPT, CPT, PT> cur;
  decode_load<RPT, CPT, AT, PT>(p, cur_slab, row, cur);
  int buf = 0;
  for (; w < nwork; w += gridDim.x) {
    // Next slab's loads first, so that they are in flight during this slab's sums and stores
    // (the branch is uniform over the block; after the last slab nothing is loaded).
    const uint32_t wn = w + gridDim.x;
    DecodeSlab next_slab = cur_slab;
    DecodeInputs<RPT, CPT, PT> next = cur;
    if (wn < nwork) {
      next_slab = decode_slab(p, wn, nslab, kSlab, cl, CPT);
      decode_load<RPT, CPT, AT, PT>(p, next_slab, row, next);
    }

    float a[RPT];
#pragma unroll
    for (int i = 0; i < RPT; ++i) {
      if (!p.gated) a[i] = 1.f;
      else if (p.decay_per_key_dim || i == 0) a[i] = expf(cur.g[i]);
      else a[i] = a[0];
    }
    float part[kSums + 1];
#pragma unroll
    for (int j = 0; j < kSums + 1; ++j) part[j] = 0.f;
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
    }
#pragma unroll
    for (int j = 0; j < kSums + 1; ++j) {
#pragma unroll
      for (int off = kColLanes; off < 32; off <<= 1) part[j] += __shfl_xor_sync(0xffffffffu, part[j], off);
    }
    if (rl == 0) {
#pragma unroll
      for (int j = 0; j < kSums; ++j) red[buf][warp][cl * kSums + j] = part[j];
      if (cl == 0) red[buf][warp][kColLanes * kSums] = part[kSums];
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
    buf ^= 1;

    float u[CPT];
#pragma unroll
    for (int j = 0; j < CPT; ++j) u[j] = p.delta ? cur.beta * (cur.v[j] - part[j]) : cur.v[j];
    if (warp == 0 && rl == 0) {
      const int64_t obase = cur_slab.b * p.o_sb + static_cast<int64_t>(p.output_head(cur_slab.h, 0)) * p.dv + cur_slab.c0;
#pragma unroll
      for (int j = 0; j < CPT; ++j) st<AT>(p.out, obase + j, p.scale * fmaf(kq, u[j], part[CPT + j]));
    }
    if (p.present != nullptr) {
      const int64_t pres_base = cur_slab.b * p.pres_sb + cur_slab.h * p.pres_sh + cur_slab.c0;
#pragma unroll
      for (int i = 0; i < RPT; ++i) {
        float x[CPT];
#pragma unroll
        for (int j = 0; j < CPT; ++j) x[j] = fmaf(cur.k[i], u[j], a[i] * unpack_state<PT>(cur.s[i], j));
        st_state<CPT>(p.present, pres_base + row[i] * p.pres_sk, p.present_dtype, x);
      }
    }
    cur = next;
    cur_slab = next_slab;
  }
}

bool state_vectorizable(const void* ptr, linattn_dtype t, int64_t sb, int64_t sh, int64_t sk,
                        int cols) {
  if (ptr == nullptr) return true;
  const uintptr_t bytes = (t == LINATTN_FLOAT32 ? 4 : 2) * cols;
  return reinterpret_cast<uintptr_t>(ptr) % bytes == 0 && sb % cols == 0 && sh % cols == 0 &&
         sk % cols == 0;
}

bool states_vectorizable(const LinearAttentionParams& p, int cols) {
  return p.dv % (kColLanes * cols) == 0 &&
         state_vectorizable(p.past, p.past_dtype, p.past_sb, p.past_sh, p.past_sk, cols) &&
         state_vectorizable(p.present, p.present_dtype, p.pres_sb, p.pres_sh, p.pres_sk, cols);
}

template <int RPT, int CPT, bool FIXED, linattn_dtype AT>
void launch(const LinearAttentionParams& p, cudaStream_t s) {
  const int nslab = (p.dv + kColLanes * CPT - 1) / (kColLanes * CPT);
  const int64_t blocks = p.B * p.Hkv * nslab;
  recurrent_kernel<RPT, CPT, FIXED, AT><<<static_cast<unsigned>(blocks), kThreads, 0, s>>>(p, nslab);
}

template <int RPT, linattn_dtype AT>
void launch_fixed(const LinearAttentionParams& p, bool wide, cudaStream_t s) {
  if (wide) launch<RPT, 8, true, AT>(p, s);
  else launch<RPT, 4, true, AT>(p, s);
}

template <int RPT, int CPT, linattn_dtype AT, linattn_dtype PT>
void launch_decode(const LinearAttentionParams& p, int sms, cudaStream_t s) {
  const int64_t nslab = p.dv / (kColLanes * CPT);
  const int64_t nwork = p.B * p.Hkv * nslab;
  const int64_t resident = static_cast<int64_t>(sms) * kDecodeBlocksPerSm;
  const int64_t grid = nwork < resident ? nwork : resident;
  decode_kernel<RPT, CPT, AT, PT><<<static_cast<unsigned>(grid), kThreads, 0, s>>>(
      p, static_cast<uint32_t>(nslab), static_cast<uint32_t>(nwork));
}

// Decode with 16-column slabs. The state dtype the kernel unpacks is the past state's; without
// one nothing is loaded and the 16-bit instance (fewer registers) serves.
template <int RPT, linattn_dtype AT>
void launch_decode_for_state(const LinearAttentionParams& p, int sms, cudaStream_t s) {
  const linattn_dtype pt = p.past != nullptr ? p.past_dtype : LINATTN_BFLOAT16;
  if (pt == LINATTN_FLOAT16) launch_decode<RPT, 4, AT, LINATTN_FLOAT16>(p, sms, s);
  else if (pt == LINATTN_BFLOAT16) launch_decode<RPT, 4, AT, LINATTN_BFLOAT16>(p, sms, s);
  else launch_decode<RPT, 4, AT, LINATTN_FLOAT32>(p, sms, s);
}

template <linattn_dtype AT>
Status launch_for_act(const LinearAttentionParams& p, int device, cudaStream_t s) {
  const int64_t blocks4 = p.B * p.Hkv * ((p.dv + 15) / 16);
  if (blocks4 == 0) return Status::ok_status();
  if (blocks4 > 0x7fffffff) {
    return unsupported("linear_attention (cuda): B * kv_num_heads * ceil(d_v / 16) = " +
                       std::to_string(blocks4) + " exceeds the grid limit 2^31 - 1");
  }
  const bool fixed_dk = p.dk == 128 || p.dk == 64;
  const bool wide = fixed_dk && states_vectorizable(p, 8) && p.B * p.Hkv * (p.dv / 32) >= kWideSlabMinBlocks;
  if (fixed_dk && (wide || states_vectorizable(p, 4))) {
    int sms = 0;
    // (The decode kernel's grid is the resident block count: it needs the SM count.)
    const bool decode = p.T == 1 && p.q_per_kv() == 1 && !wide;
    if (decode &&
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) == cudaSuccess && sms > 0) {
      if (p.dk == 128) launch_decode_for_state<4, AT>(p, sms, s);
      else launch_decode_for_state<2, AT>(p, sms, s);
    } else if (p.dk == 128) launch_fixed<4, AT>(p, wide, s);
    else launch_fixed<2, AT>(p, wide, s);
  } else {
    const int rpt = (p.dk + kRowsPerPass - 1) / kRowsPerPass;
    if (rpt <= 1) launch<1, 4, false, AT>(p, s);
    else if (rpt <= 2) launch<2, 4, false, AT>(p, s);
    else if (rpt <= 4) launch<4, 4, false, AT>(p, s);
    else if (rpt <= 8) launch<8, 4, false, AT>(p, s);
    else if (rpt <= kMaxRowsPerThread) launch<kMaxRowsPerThread, 4, false, AT>(p, s);
    else
      return unsupported("linear_attention (cuda): d_k = " + std::to_string(p.dk) +
                         " is larger than the supported maximum " +
                         std::to_string(kMaxRowsPerThread * kRowsPerPass));
  }
  return launch_status("linear_attention (cuda): recurrent kernel launch");
}

}  // namespace

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e) {
  DeviceGuard guard(e.device_id);
  const auto s = static_cast<cudaStream_t>(e.stream);
  switch (p.act_dtype) {
    case LINATTN_FLOAT32: return launch_for_act<LINATTN_FLOAT32>(p, e.device_id, s);
    case LINATTN_FLOAT16: return launch_for_act<LINATTN_FLOAT16>(p, e.device_id, s);
    case LINATTN_BFLOAT16: return launch_for_act<LINATTN_BFLOAT16>(p, e.device_id, s);
    default:
      return unsupported("linear_attention (cuda): activation dtype " +
                         std::to_string(static_cast<int>(p.act_dtype)) +
                         " is not float32, float16 or bfloat16");
  }
}

}  // namespace linattn::detail::cuda
