// Chunked (WY) prefill for serving calls (docs/SERVING.md): variable-length packed batches or
// batch rows, state pools with PAD, separate read slots, has_initial_state, padded slot
// strides, prefix checkpoints, fused q/k L2 norm and gating. The index tensors stay on the
// device and are never read by the host, so the call is one fixed sequence of launches
// (graph-capturable):
//   1. (fused pre-processing only) a pass that writes L2-normalised q and k (activation dtype)
//      and float32 gates g and beta into the workspace; the chunked kernels then read those;
//   2. a one-CTA kernel that resolves every sequence (resolve_sequence) and writes the
//      sequence table of chunked_layout.cuh: the sequences that compute (resolved, not PAD,
//      at least one token) in layout order, the chunks of each (ceil(len / 64); their total
//      is at most ceil(T / 64) + N, which bounds the windows) and, for the time-major
//      numbering, the offsets of the steps;
//   3. a kernel over sequences for everything without chunks: the error flag of a sequence
//      that breaks an index rule, zero output rows of PAD sequences, and the state copy (read
//      slot or zeros -> write slot) of zero-length ones;
//   4. per window of the global chunk index space: the prep kernel (CTAs over chunk x kv
//      head, each finding its sequence and chunk by binary search; past the real total they
//      exit) and the scan kernel (CTA i of a window takes the i-th sequence with chunks in
//      it, per kv head and 64-column slab, and walks its chunks of the window). A sequence
//      that crosses a window boundary passes its state through a float32 carry slot.
// The global numbering (chunked_layout.cuh) decides what a window holds. Sequence-major (all
// chunks of one sequence, then the next) puts a few whole sequences in a window, so a long
// sequence scans alone with 64 CTAs per window while the SMs idle; time-major (the first
// chunk of every sequence, then the second, ..., longest first) gives every window a time
// slice of all running sequences, as the dense path's windows do for a batch. Time-major
// needs a carry state per sequence, so it is the default up to kTimeMajorMaxSequences
// sequences; beyond that the windows hold many sequences either way.
// Windows keep the workspace bounded as in the dense path (same record budget). Segments
// (the dense path's parallel scan of one long sequence) are not used.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_prefill.hpp"
#include "cuda/chunked_serving.cuh"
#include "cuda/cuda_common.cuh"
#include "cuda/serving_flag.cuh"

namespace linattn::detail::cuda {
namespace chunked {
namespace {

constexpr int kTableThreads = 1024;

struct ServingPlan {
  int64_t max_chunks = 0;  // bound on the chunks of all sequences (host side, indices unread)
  int64_t window = 0, windows = 0;
  bool time_major = false;
  int64_t lanes = 0;  // L of the window map: min(window, N)
  size_t table_off = 0, cmap_off = 0, wmap_off = 0, q_off = 0, k_off = 0, g_off = 0, beta_off = 0;
  size_t rg_off = 0, rt_off = 0, carry_off = 0, total = 0;
};

int64_t token_rows(const LinearAttentionServing& s) { return s.p.B * s.p.T; }

ServingPlan serving_plan(const LinearAttentionServing& s, const ChunkedServingOptions& o) {
  const LinearAttentionParams& p = s.p;
  const ServingIndices& x = s.ix;
  ServingPlan w;
  const int64_t per_seq = (x.T + kC - 1) / kC;
  // Packed: sum of ceil(len_n / 64) <= (T + 63 N) / 64. Rows: every sequence has T tokens.
  w.max_chunks = x.packed ? (x.T + (kC - 1) * x.N) / kC : x.N * per_seq;
  const size_t per_chunk = RecordBytes(p).total();
  int64_t fit = std::max<int64_t>(1, static_cast<int64_t>(kWindowBytes / (per_chunk * p.Hkv)));
  if (o.max_window_chunks > 0) fit = std::min(fit, o.max_window_chunks);
  w.window = std::max<int64_t>(1, std::min(fit, w.max_chunks));
  w.windows = (w.max_chunks + w.window - 1) / w.window;
  using Layout = ChunkedServingOptions::Layout;
  w.time_major = o.layout == Layout::kTimeMajor ||
                 (o.layout == Layout::kAuto && x.N <= kTimeMajorMaxSequences);
  size_t off = 0;
  w.table_off = off;
  const size_t table_entries = static_cast<size_t>(4 * x.N + 3) +
                               (w.time_major ? static_cast<size_t>(w.max_chunks) + 1 : 0);
  off = align256(off + table_entries * 8);
  w.lanes = std::min<int64_t>(w.window, x.N);
  w.cmap_off = off;
  off = align256(off + static_cast<size_t>(w.max_chunks) * 2 * 8);
  w.wmap_off = off;
  off = align256(off + static_cast<size_t>(w.windows) * static_cast<size_t>(w.lanes) * 3 * 8);
  const size_t rows = static_cast<size_t>(token_rows(s));
  const size_t a16 = 2;
  w.q_off = off;
  if (s.qk_l2norm) off = align256(off + rows * p.Hq * p.dk * a16);
  w.k_off = off;
  if (s.qk_l2norm) off = align256(off + rows * p.Hk * p.dk * a16);
  w.g_off = off;
  if (s.fused_gating && p.decay) off = align256(off + rows * p.Hkv * 4);
  w.beta_off = off;
  if (s.fused_gating && p.beta) off = align256(off + rows * (p.beta_shared ? 1 : p.Hkv) * 4);
  const size_t recs = static_cast<size_t>(p.Hkv) * static_cast<size_t>(w.windows > 0 ? w.window : 0);
  w.carry_off = record_regions(p, recs, off, &w.rg_off, &w.rt_off);
  // A carry state per boundary (sequence-major) or per sequence (time-major).
  const size_t carries = w.windows <= 1 ? 0
                         : w.time_major ? static_cast<size_t>(x.N)
                                        : static_cast<size_t>(w.windows - 1);
  w.total = w.carry_off + carries * p.Hkv * p.dk * p.dv * 4;
  return w;
}

Status launch_error(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err == cudaSuccess) return Status::ok_status();
  return Status(LINATTN_ERROR_DEVICE, std::string("chunked serving prefill (") + what + "): " +
                                          cudaGetErrorString(err));
}

// ---- 1. fused pre-processing ------------------------------------------------------------------

// One warp per (token row, head): x / sqrt(sum x^2 + eps), written contiguous (rows, heads * d).
__global__ void l2norm_kernel(const void* src, int64_t sb, int64_t st, int64_t T, int heads, int d,
                              float eps, linattn_dtype dt, void* dst, int64_t vectors) {
  const int64_t v = (blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (v >= vectors) return;
  const int64_t r = v / heads, hd = v % heads;
  const int64_t b = r / T, t = r % T;
  const int64_t s0 = b * sb + t * st + hd * d, d0 = r * heads * d + hd * d;
  float x[4];
  float ss = 0.f;
  const int per = d / 32;  // 2 or 4
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    x[i] = i < per ? load_as_float(src, s0 + lane * per + i, dt) : 0.f;
    ss += x[i] * x[i];
  }
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  const float inv = rsqrtf(ss + eps);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (i < per) store_from_float(dst, d0 + lane * per + i, dt, x[i] * inv);
  }
}

// One thread per (token row, kv head): g = -exp(A_log) softplus(a + dt_bias), beta = sigmoid(b),
// both float32.
__global__ void gates_kernel(LinearAttentionServing s, float* g, float* beta, int bw) {
  const LinearAttentionParams& p = s.p;
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t rows = p.B * p.T;
  if (i >= rows * p.Hkv) return;
  const int64_t r = i / p.Hkv, b = r / p.T, t = r % p.T;
  const int h = static_cast<int>(i % p.Hkv);
  if (g != nullptr) {
    const float a = load_as_float(p.decay, b * p.g_sb + t * p.g_st + h, p.act_dtype);
    const float A = load_as_float(s.A_log, h * s.A_log_s, s.A_log_dtype);
    const float bias = s.dt_bias ? load_as_float(s.dt_bias, h * s.dt_bias_s, s.dt_bias_dtype) : 0.f;
    const float xx = a + bias;
    const float sp = xx > 20.f ? xx : log1pf(expf(xx));
    g[r * p.Hkv + h] = -expf(A) * sp;
  }
  if (beta != nullptr && h < bw) {
    const float x = load_as_float(p.beta, b * p.beta_sb + t * p.beta_st + h, p.act_dtype);
    beta[r * bw + h] = 1.f / (1.f + expf(-x));
  }
}

// ---- 2. the sequence table -------------------------------------------------------------------

// Exclusive prefix sum over the CTA (kTableThreads threads); *total gets the sum.
__device__ int64_t block_exclusive_scan(int64_t x, int64_t* total) {
  __shared__ int64_t warp_sums[kTableThreads / 32];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  int64_t incl = x;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int64_t y = __shfl_up_sync(0xffffffffu, incl, off);
    if (lane >= off) incl += y;
  }
  if (lane == 31) warp_sums[w] = incl;
  __syncthreads();
  if (w == 0) {
    int64_t v = warp_sums[lane];
    int64_t vi = v;
#pragma unroll
    for (int off = 1; off < 32; off <<= 1) {
      const int64_t y = __shfl_up_sync(0xffffffffu, vi, off);
      if (lane >= off) vi += y;
    }
    warp_sums[lane] = vi - v;  // exclusive over warps
    if (lane == 31) *total = vi;
  }
  __syncthreads();
  const int64_t r = warp_sums[w] + incl - x;
  __syncthreads();  // warp_sums and *total are reused by the next call
  return r;
}

// Time-major calls rank the sequences longest first (a rank count per sequence over all
// others: they have at most kTimeMajorMaxSequences unless a test forces the layout), then
// write the steps' offsets off[c] = sum_k min(cnt_k, c).
// Then the chunk map and the window map (chunked_layout.cuh) for windows of W chunks.
__global__ void __launch_bounds__(kTableThreads) table_kernel(ServingIndices x, int64_t* table,
                                                              bool time_major, int64_t M, int64_t W,
                                                              int64_t windows, int64_t L,
                                                              int64_t* cmap, int64_t* wmap) {
  __shared__ int64_t tot_chunks, tot_seqs;
  int64_t chunks = 0, seqs = 0;  // running sums over the tiles before this one
  int64_t* start = table + 1;
  int64_t* seq = table + x.N + 2;
  int64_t* cnt = table + 2 * x.N + 2;    // chunks of sequence n
  int64_t* order = table + 3 * x.N + 2;  // the sequences in layout order
  for (int64_t n = threadIdx.x; n < x.N; n += kTableThreads) {
    ResolvedSequence r;
    cnt[n] = resolve_sequence(x, n, &r) && !r.pad ? (r.len + kC - 1) / kC : 0;
  }
  __syncthreads();
  for (int64_t n = threadIdx.x; n < x.N; n += kTableThreads) {
    int64_t rank = n;
    if (time_major) {
      const int64_t c = cnt[n];
      rank = 0;
      for (int64_t m = 0; m < x.N; ++m) {
        const int64_t cm = cnt[m];
        rank += cm > c || (cm == c && m < n);
      }
    }
    order[rank] = n;
  }
  __syncthreads();
  for (int64_t i0 = 0; i0 < x.N; i0 += kTableThreads) {
    const int64_t i = i0 + threadIdx.x;
    const int64_t n = i < x.N ? order[i] : 0;
    const int64_t c = i < x.N ? cnt[n] : 0;
    const int64_t has = c > 0 ? 1 : 0;
    const int64_t cpos = block_exclusive_scan(c, &tot_chunks);
    const int64_t kpos = block_exclusive_scan(has, &tot_seqs);
    if (has) {
      start[seqs + kpos] = chunks + cpos;
      seq[seqs + kpos] = n;
    }
    chunks += tot_chunks;
    seqs += tot_seqs;
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    table[0] = seqs;
    start[seqs] = chunks;
  }
  __syncthreads();  // start[] complete
  if (time_major) {
    // Step c holds one chunk of each sequence with cnt_k > c: with the counts in descending
    // order, the first k with cnt_k <= c.
    const int64_t K = seqs;
    const int64_t steps = K > 0 ? start[1] - start[0] : 0;
    int64_t* off = table + 4 * x.N + 3;
    int64_t done = 0;
    for (int64_t c0 = 0; c0 <= steps; c0 += kTableThreads) {
      const int64_t c = c0 + threadIdx.x;
      int64_t active = 0;
      if (c < steps) {
        int64_t lo = 0, hi = K;
        while (lo < hi) {
          const int64_t mid = (lo + hi) >> 1;
          if (start[mid + 1] - start[mid] > c) lo = mid + 1; else hi = mid;
        }
        active = lo;
      }
      const int64_t pos = block_exclusive_scan(active, &tot_chunks);
      if (c <= steps) off[c] = done + pos;
      done += tot_chunks;
    }
    if (threadIdx.x == 0) table[4 * x.N + 2] = steps;
    __syncthreads();  // off[] complete
  }
  const SeqTable tab{table, x.N};
  const int64_t total = chunks;
  // Chunk map: global chunk g -> (sequence rank k, its chunk c) -> tokens.
  for (int64_t g = threadIdx.x; g < M; g += kTableThreads) {
    int64_t t0 = 0, bn = 0;
    if (g < total) {
      int64_t k, c;
      if (time_major) {
        c = tab.step_of(g);
        k = g - tab.off(c);
      } else {
        k = tab.find(g);
        c = g - tab.start(k);
      }
      int64_t b, s0, len;
      sequence_tokens(x, tab.seq(k), &b, &s0, &len);
      t0 = s0 + c * kC;
      bn = (b << 8) | (len - c * kC < kC ? len - c * kC : kC);
    }
    cmap[2 * g] = t0;
    cmap[2 * g + 1] = bn;
  }
  // Window map: scan CTA i of window w -> (k, cbeg, cend).
  for (int64_t e = threadIdx.x; e < windows * L; e += kTableThreads) {
    const int64_t c0 = (e / L) * W, i = e % L;
    const int64_t nc = W < M - c0 ? W : M - c0;
    int64_t k = -1, cb = 0, ce = 0;
    if (c0 < total && i < nc) {
      if (time_major) {
        // The window starts at sequence ka of step ca and meets sequences (ka + i) mod a_ca.
        const int64_t ca = tab.step_of(c0);
        const int64_t a = tab.off(ca + 1) - tab.off(ca);
        if (i < a) {
          k = (c0 - tab.off(ca) + i) % a;
          const int64_t cnt = tab.start(k + 1) - tab.start(k);
          cb = tab.first_step_from(c0, k, cnt);
          ce = tab.first_step_from(c0 + nc, k, cnt);
        }
      } else {
        k = tab.find(c0) + i;
        if (k < tab.count() && tab.start(k) < c0 + nc) {
          const int64_t first = tab.start(k), end = tab.start(k + 1);
          cb = (first > c0 ? first : c0) - first;
          ce = (end < c0 + nc ? end : c0 + nc) - first;
        }
      }
      if (cb >= ce) k = -1;
    }
    wmap[3 * e] = k;
    wmap[3 * e + 1] = cb;
    wmap[3 * e + 2] = ce;
  }
}

// ---- 3. sequences without chunks -------------------------------------------------------------

// One CTA per sequence: the error flag for a sequence that breaks an index rule, zero output
// rows for PAD, the state copy for zero-length sequences (nothing for the others).
__global__ void edges_kernel(LinearAttentionParams p, ServingIndices x) {
  const int64_t n = blockIdx.x;
  ResolvedSequence r;
  if (!resolve_sequence(x, n, &r)) {
    if (threadIdx.x == 0) raise_serving_error(x.error_flag, n);
    return;
  }
  if (r.pad) {
    const int64_t W = int64_t{p.Hout} * p.dv;
    for (int64_t e = threadIdx.x; e < r.len * W; e += blockDim.x) {
      const int64_t t = r.t0 + e / W, c = e % W;
      static_cast<uint16_t*>(p.out)[r.b * p.o_sb + t * p.o_st + c] = 0;  // +0 in bf16 and f16
    }
    return;
  }
  if (r.len > 0) return;
  const bool past = p.past != nullptr;
  // In place on the same slot: nothing moves.
  if ((!past || p.in_place) && r.read == r.write) return;
  const linattn_dtype rdt = past ? p.past_dtype : p.present_dtype;
  const void* rbase = past ? p.past : p.present;
  const int64_t rsb = past ? p.past_sb : p.pres_sb, rsh = past ? p.past_sh : p.pres_sh,
                rsk = past ? p.past_sk : p.pres_sk;
  const int64_t block = int64_t{p.dk} * p.dv;
  for (int64_t e = threadIdx.x; e < p.Hkv * block; e += blockDim.x) {
    const int64_t h = e / block, i = (e % block) / p.dv, j = e % p.dv;
    const float v = r.read >= 0 ? load_as_float(rbase, r.read * rsb + h * rsh + i * rsk + j, rdt) : 0.f;
    store_from_float(p.present, r.write * p.pres_sb + h * p.pres_sh + i * p.pres_sk + j,
                     p.present_dtype, v);
  }
}

}  // namespace
}  // namespace chunked

// Dispatch. The chunked path pays per chunk of 64 tokens and per (sequence, kv head) state
// walk; the recurrent serving kernel pays per token. The choice must not read the indices
// (the lengths live on the device), so it looks at the average length T_total / N: at 64 or
// more tokens per sequence the call is prefill-like (at least one full chunk per sequence on
// average) and takes the chunked path; decode batches (N = T) and mostly-decode mixed
// batches stay on the recurrent kernel, where a chunk of 64 rows would be almost all padding.
// Speculative calls (one stored state per token) and value-major pools (the scan keeps the
// key-major state slice in registers and reads/writes key-major blocks) stay recurrent too.
bool chunked_prefill_serving_supports(const LinearAttentionServing& s) {
  const ServingIndices& x = s.ix;
  if (!chunked_prefill_supports(s.p)) return false;  // dtypes, head dims, per-head decay
  if (x.spec || s.value_major || x.N <= 0) return false;
  if (x.ckpt_count > 0 && x.ckpt_interval % chunked::kC != 0) return false;
  const int64_t tokens = x.packed ? x.T : x.N * x.T;
  return tokens >= int64_t{chunked::kC} * x.N;
}

size_t chunked_prefill_serving_workspace_bytes_with(const LinearAttentionServing& s,
                                                    const ChunkedServingOptions& o) {
  return chunked_prefill_serving_supports(s) ? chunked::serving_plan(s, o).total : 0;
}

size_t chunked_prefill_serving_workspace_bytes(const LinearAttentionServing& s) {
  return chunked_prefill_serving_workspace_bytes_with(s, ChunkedServingOptions{});
}

Status chunked_prefill_serving_with(const LinearAttentionServing& s, const Exec& e,
                                    const ChunkedServingOptions& o) {
  using namespace chunked;
  if (!chunked_prefill_serving_supports(s)) {
    return unsupported("chunked serving prefill: unsupported configuration");
  }
  LINATTN_RETURN_IF_ERROR(chunked_prefill_check_device(s.p.dk, e.device_id));
  const ServingPlan w = serving_plan(s, o);
  if (e.workspace_bytes < w.total || (w.total > 0 && e.workspace == nullptr)) {
    return Status(LINATTN_ERROR_INTERNAL, "chunked serving prefill: workspace of " +
                                              std::to_string(e.workspace_bytes) +
                                              " bytes, expected at least " + std::to_string(w.total));
  }
  auto stream = static_cast<cudaStream_t>(e.stream);
  auto* ws = static_cast<unsigned char*>(e.workspace);
  LinearAttentionParams p = s.p;
  linattn_dtype gate_dtype = p.act_dtype;
  const int64_t rows = token_rows(s);

  // 1. Fused pre-processing into the workspace; the params then point there.
  if (s.qk_l2norm && rows > 0) {
    struct Src { const void** ptr; int64_t* sb; int64_t* st; int heads; size_t off; };
    for (Src t : {Src{&p.q, &p.q_sb, &p.q_st, p.Hq, w.q_off}, Src{&p.k, &p.k_sb, &p.k_st, p.Hk, w.k_off}}) {
      const int64_t vectors = rows * t.heads;
      void* dst = ws + t.off;
      l2norm_kernel<<<static_cast<unsigned>((vectors * 32 + 255) / 256), 256, 0, stream>>>(
          *t.ptr, *t.sb, *t.st, p.T, t.heads, p.dk, s.qk_l2norm_eps, p.act_dtype, dst, vectors);
      LINATTN_RETURN_IF_ERROR(launch_error("l2norm"));
      *t.ptr = dst;
      *t.st = int64_t{t.heads} * p.dk;
      *t.sb = p.T * *t.st;
    }
  }
  if (s.fused_gating && rows > 0 && (p.decay || p.beta)) {
    const int bw = p.beta_shared ? 1 : p.Hkv;
    float* g = p.decay ? reinterpret_cast<float*>(ws + w.g_off) : nullptr;
    float* beta = p.beta ? reinterpret_cast<float*>(ws + w.beta_off) : nullptr;
    LinearAttentionServing src = s;
    src.p = p;
    const int64_t n = rows * p.Hkv;
    gates_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(src, g, beta, bw);
    LINATTN_RETURN_IF_ERROR(launch_error("gates"));
    if (g) {
      p.decay = g;
      p.g_st = p.Hkv;
      p.g_sb = p.T * p.Hkv;
    }
    if (beta) {
      p.beta = beta;
      p.beta_st = bw;
      p.beta_sb = p.T * bw;
    }
    gate_dtype = LINATTN_FLOAT32;
  }

  // 2. The sequence table; 3. sequences without chunks.
  auto* table = reinterpret_cast<int64_t*>(ws + w.table_off);
  auto* cmap = reinterpret_cast<int64_t*>(ws + w.cmap_off);
  auto* wmap = reinterpret_cast<int64_t*>(ws + w.wmap_off);
  table_kernel<<<1, kTableThreads, 0, stream>>>(s.ix, table, w.time_major, w.max_chunks, w.window,
                                                w.windows, w.lanes, cmap, wmap);
  LINATTN_RETURN_IF_ERROR(launch_error("table"));
  edges_kernel<<<static_cast<unsigned>(s.ix.N), 256, 0, stream>>>(p, s.ix);
  LINATTN_RETURN_IF_ERROR(launch_error("edges"));

  // 4. Windows over the global chunk index.
  KernelArgs a{};
  a.p = p;
  a.split = o.split_state;
  a.pw = o.p_warpgroup;
  a.head = whole_heads(p, w.lanes, o.split_state, o.whole_head);
  a.gate_dtype = gate_dtype;
  set_vector_access(a);
  a.g = reinterpret_cast<float*>(ws + w.rg_off);
  a.t = reinterpret_cast<uint16_t*>(ws + w.rt_off);
  a.carry = reinterpret_cast<float*>(ws + w.carry_off);
  a.seg_state = nullptr;
  a.seg_m = nullptr;
  a.local = false;
  a.nseg = 1;
  a.first = a.last = false;
  a.serving = true;
  a.ix = s.ix;
  a.table = table;
  a.window_chunks = w.window;
  a.time_major = w.time_major;
  a.chunk_map = cmap;
  a.window_map = wmap;
  a.window_lanes = w.lanes;
  for (int64_t c0 = 0; c0 < w.max_chunks; c0 += w.window) {
    a.c0 = c0;
    a.nc = std::min(w.window, w.max_chunks - c0);
    a.seg_len = a.nc;
    if (o.run_prep) LINATTN_RETURN_IF_ERROR(launch_prep(a, stream));
    if (o.run_scan) LINATTN_RETURN_IF_ERROR(launch_scan(a, stream));
  }
  return Status::ok_status();
}

Status chunked_prefill_serving(const LinearAttentionServing& s, const Exec& e) {
  // As the dense entry: the state split only for the rules without decay.
  ChunkedServingOptions o;
  o.split_state = !s.p.gated;
  return chunked_prefill_serving_with(s, e, o);
}

}  // namespace linattn::detail::cuda
