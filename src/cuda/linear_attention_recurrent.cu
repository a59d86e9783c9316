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
// a call costs one memory round trip.
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

template <linattn_dtype AT>
Status launch_for_act(const LinearAttentionParams& p, cudaStream_t s) {
  const int64_t blocks4 = p.B * p.Hkv * ((p.dv + 15) / 16);
  if (blocks4 == 0) return Status::ok_status();
  if (blocks4 > 0x7fffffff) {
    return unsupported("linear_attention (cuda): B * kv_num_heads * ceil(d_v / 16) = " +
                       std::to_string(blocks4) + " exceeds the grid limit 2^31 - 1");
  }
  const bool fixed_dk = p.dk == 128 || p.dk == 64;
  const bool wide = fixed_dk && states_vectorizable(p, 8) && p.B * p.Hkv * (p.dv / 32) >= kWideSlabMinBlocks;
  if (fixed_dk && (wide || states_vectorizable(p, 4))) {
    if (p.dk == 128) launch_fixed<4, AT>(p, wide, s);
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
    case LINATTN_FLOAT32: return launch_for_act<LINATTN_FLOAT32>(p, s);
    case LINATTN_FLOAT16: return launch_for_act<LINATTN_FLOAT16>(p, s);
    case LINATTN_BFLOAT16: return launch_for_act<LINATTN_BFLOAT16>(p, s);
    default:
      return unsupported("linear_attention (cuda): activation dtype " +
                         std::to_string(static_cast<int>(p.act_dtype)) +
                         " is not float32, float16 or bfloat16");
  }
}

}  // namespace linattn::detail::cuda
