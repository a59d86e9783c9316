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
//      head, each finding its chunk in the chunk map; past the real total they exit) and the
//      scan kernel (CTA i of a window takes the i-th entry of the window map, a sequence with
//      chunks in it or a prefix segment of one, per kv head (and 64-column slab), and walks
//      its chunks of the window). A sequence that crosses a window boundary passes its state
//      through a float32 carry slot.
// The global numbering (chunked_layout.cuh) decides what a window holds. Sequence-major (all
// chunks of one sequence, then the next) puts a few whole sequences in a window, so a long
// sequence scans alone with 64 CTAs per window while the SMs idle; time-major (the first
// chunk of every sequence, then the second, ..., longest first) gives every window a time
// slice of all running sequences, as the dense path's windows do for a batch. Time-major
// needs a carry state per sequence, so it is the default up to kTimeMajorMaxSequences
// sequences; beyond that the windows hold many sequences either way.
// Windows keep the workspace bounded as in the dense path (same record budget). Time-major
// windows cut their longest sequences into prefix segments where the SMs would otherwise idle
// (SplitRule below; a lone long prompt: 2.42 -> 1.94 ms at 65536 tokens on the H100); the
// dense path's local pass and combine are not used.
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

// The least makespan in chunks for which the rule below cuts sequences (as the dense path's
// least segment, kMinSegmentChunks).
constexpr int64_t kMinSplitChunks = 8;

// How the table kernel cuts the sequences of a window into prefix segments (chunked_layout.cuh).
// In chunk times with outputs (a chunk the chain walks alone costs r), it looks for the
// smallest makespan M such that every sequence fits into at most smax segments that all end by
// M (the fewest that do, with the least work: prefix_cuts), the segments beyond the
// first number at most X, and the work of all of them fits the SMs: sum of times <= lam M, lam
// being the sequences the final pass runs at once (SMs over CTAs per sequence). The segments of
// the cut sequences, which the map puts first, also number at most lam, so that all start at
// once: the work bound alone let the least-work cuts take three segments of a lone sequence on
// 64 CTAs each, whose third waited for the first to end (lone 65536-token row +3%). It cuts only
// where M is below 0.95 of the window's time uncut, max(longest, work / lam), and M is at least
// kMinSplitChunks (a CTA's start, its state load and first stages, costs a few chunks' time,
// which the rule does not count). Forced (tests): the work bound, the gain and the least M are
// not asked.
struct SplitRule {
  float lam = 0.f, r = 0.5f;
  int smax = 1;
  int64_t min_m = 1;  // the smallest makespan considered (chunks)
  bool forced = false;
  // Start states: past_state given, the element strides of a pool slot (past, present) and of a
  // carry state.
  bool past = false;
  int64_t past_sb = 0, pres_sb = 0, carry_per_seq = 0;
};

struct ServingPlan {
  int64_t max_chunks = 0;  // bound on the chunks of all sequences (host side, indices unread)
  int64_t window = 0, windows = 0;
  bool time_major = false;
  int64_t lanes = 0;  // L of the window map: min(window, N)
  bool head = false;  // the final pass on whole value heads (chunked_prefill.cu, whole_heads)
  int64_t splits = 0; // X: prefix-segment entries per window beyond the L sequences
  SplitRule rule;
  size_t table_off = 0, cmap_off = 0, wmap_off = 0, split_src_off = 0, split_state_off = 0;
  size_t q_off = 0, k_off = 0, g_off = 0, beta_off = 0;
  size_t rg_off = 0, rt_off = 0, carry_off = 0, total = 0;
};

// The rule's knobs for a call (X = 0: no prefix segments). Time-major windows only, whose
// sequences are few (at most kTimeMajorMaxSequences, one warp of the table kernel per window),
// and with a carry slot per sequence. By the fluid argument of the rule, the segments beyond
// the first number less than lam, so X = floor(lam) entries suffice.
void split_rule(const LinearAttentionServing& s, const ChunkedServingOptions& o, ServingPlan* w) {
  const LinearAttentionParams& p = s.p;
  SplitRule& r = w->rule;
  r.past = p.past != nullptr;
  r.past_sb = p.past_sb;
  r.pres_sb = p.pres_sb;
  r.carry_per_seq = int64_t{p.Hkv} * p.dk * p.dv;
  r.r = static_cast<float>(prefix_share(o.prefix_share));
  w->splits = 0;
  if (!w->time_major || w->lanes > 64 || o.prefix == 0) return;
  if (o.prefix > 0) {
    r.forced = true;
    r.smax = static_cast<int>(std::clamp<int64_t>(o.segments > 0 ? o.segments : 2, 2, kMaxPrefixSegments));
    w->splits = w->lanes * (r.smax - 1);
    return;
  }
  // Both final-pass forms hold an SM alone by their shared memory (the slab form's one CTA per SM
  // is asserted by ChunkedPrefill.FitsDeviceSharedMemory; the whole-head form takes 222 KB), so
  // the rule asks no occupancy on every call.
  const int64_t per_seq = int64_t{p.Hkv} * (w->head ? 1 : p.dv / kSlab);
  r.lam = static_cast<float>(static_cast<double>(sm_count()) / static_cast<double>(per_seq));
  r.smax = kMaxPrefixSegments;
  r.min_m = kMinSplitChunks;
  w->splits = std::min<int64_t>(static_cast<int64_t>(r.lam), w->lanes * (r.smax - 1));
}

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
  w.head = whole_heads(p, w.lanes, o.split_state, o.whole_head);
  split_rule(s, o, &w);
  const size_t nwin = static_cast<size_t>(w.windows), nsplit = static_cast<size_t>(w.splits);
  w.cmap_off = off;
  off = align256(off + static_cast<size_t>(w.max_chunks) * 2 * 8);
  w.wmap_off = off;
  off = align256(off + nwin * static_cast<size_t>(w.lanes + w.splits) * sizeof(WindowLane));
  w.split_src_off = off;
  off = align256(off + nwin * nsplit * sizeof(SplitStart));
  w.split_state_off = off;
  off = align256(off + nsplit * static_cast<size_t>(w.rule.carry_per_seq) * 4);
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

// Lane i of window w before any cut: the sequence rank k (-1: none) and its chunks [cb, ce) in
// the window (its own chunk indices).
struct WindowSpan {
  int64_t k, cb, ce;
};
__device__ WindowSpan window_span(const SeqTable& tab, bool time_major, int64_t total, int64_t M,
                                  int64_t W, int64_t w, int64_t i) {
  const int64_t c0 = w * W;
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
  return WindowSpan{k, cb, ce};
}

// Prefix segments of n chunks that all end by time m (SplitRule), where a segment's time is its
// chunks plus r times the chunks before it (its chain walks them first). Their count is the
// fewest that fit: the cut from the front with each segment as long as it can be. Their lengths
// then come from the back, each as long as it can be: every chunk in front of a segment is
// walked again by its chain, so short front segments leave the least work (n + r sum of the
// segments' prefixes) to share the SMs with the other sequences. Returns the count (0: more
// than smax, or no progress), adds the segments' times to *work and, with len, writes their
// lengths.
__device__ int prefix_cuts(int64_t n, int64_t m, float r, int smax, float* work, int64_t* len) {
  // The count, and the work of the cut from the front (kept in registers: the table kernel's
  // binary search calls this for every sequence at every step).
  int s = 0;
  float work_front = 0.f;
  for (int64_t pre = 0;;) {
    const int64_t rest = n - pre;
    const float before = r * static_cast<float>(pre);
    if (before + static_cast<float>(rest) <= static_cast<float>(m)) {
      work_front += before + static_cast<float>(rest);
      ++s;
      break;
    }
    const auto l = static_cast<int64_t>(static_cast<float>(m) - before);
    if (l < 1 || s + 1 == smax) return 0;
    work_front += before + static_cast<float>(l);
    ++s;
    pre += l;
  }
  // From the back: segment j takes at most (m - r rest) / (1 - r) of the rest (its prefix is the
  // rest less itself) and leaves one chunk at least to each segment in front of it. With two
  // segments or more r < 1 (the second's time is at least n > m otherwise).
  bool back = s > 1;
  float work_back = 0.f;
  int64_t rest = n;
  for (int j = s - 1; j > 0 && back; --j) {
    auto l = static_cast<int64_t>((static_cast<float>(m) - r * static_cast<float>(rest)) / (1.f - r));
    l = l < rest - j ? l : rest - j;
    back = l >= 1;
    work_back += r * static_cast<float>(rest - l) + static_cast<float>(l);
    if (len) len[j] = l;
    rest -= l;
  }
  // Rounding down can leave the front segment over m: then the cut from the front.
  back = back && rest <= m;
  if (back) {
    if (len) len[0] = rest;
    *work += work_back + static_cast<float>(rest);
    return s;
  }
  *work += work_front;
  if (len) {
    int64_t pre = 0;
    for (int j = 0; j < s; ++j) {
      const int64_t l = j + 1 == s ? n - pre : static_cast<int64_t>(static_cast<float>(m) - r * static_cast<float>(pre));
      len[j] = l;
      pre += l;
    }
  }
  return s;
}

// Exclusive prefix sums over a warp's 64 values (thread t holds values t and 32 + t); *total
// gets their sum.
__device__ void warp_scan64(int64_t v0, int64_t v1, int64_t* e0, int64_t* e1, int64_t* total) {
  const int lane = threadIdx.x & 31;
  int64_t i0 = v0, i1 = v1;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const int64_t y0 = __shfl_up_sync(0xffffffffu, i0, off), y1 = __shfl_up_sync(0xffffffffu, i1, off);
    if (lane >= off) {
      i0 += y0;
      i1 += y1;
    }
  }
  const int64_t t0 = __shfl_sync(0xffffffffu, i0, 31);
  *e0 = i0 - v0;
  *e1 = t0 + i1 - v1;
  *total = t0 + __shfl_sync(0xffffffffu, i1, 31);
}

// One warp: window w's map of L + X entries with its longest sequences cut into prefix segments
// by the rule (SplitRule), and the sources of their start states (X entries).
__device__ void split_window(const ServingIndices& x, const SeqTable& tab, bool time_major, int64_t total,
                             int64_t M, int64_t W, int64_t w, int64_t L, int64_t X, const SplitRule& rule,
                             WindowLane* map, SplitStart* src) {
  const int lane = threadIdx.x & 31;
  WindowSpan sp[2];
  int64_t n[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t i = lane + 32 * h;
    sp[h] = i < L ? window_span(tab, time_major, total, M, W, w, i) : WindowSpan{-1, 0, 0};
    n[h] = sp[h].k >= 0 ? sp[h].ce - sp[h].cb : 0;
  }
  int64_t nmax = n[0] > n[1] ? n[0] : n[1];
  float work0 = static_cast<float>(n[0] + n[1]);
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) {
    const int64_t y = __shfl_xor_sync(0xffffffffu, nmax, off);
    nmax = y > nmax ? y : nmax;
    work0 += __shfl_xor_sync(0xffffffffu, work0, off);
  }
  // Whether every sequence fits by time m (the bounds of the rule).
  const auto fits = [&](int64_t m) {
    float work = 0.f;
    int64_t extra = 0, cut_entries = 0;
    int bad = 0;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      if (n[h] == 0) continue;
      const int c = prefix_cuts(n[h], m, rule.r, rule.smax, &work, nullptr);
      bad |= c == 0;
      extra += c - 1;
      cut_entries += c > 1 ? c : 0;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
      work += __shfl_xor_sync(0xffffffffu, work, off);
      extra += __shfl_xor_sync(0xffffffffu, extra, off);
      cut_entries += __shfl_xor_sync(0xffffffffu, cut_entries, off);
      bad |= __shfl_xor_sync(0xffffffffu, bad, off);
    }
    return !bad && extra <= X &&
           (rule.forced || (work <= rule.lam * static_cast<float>(m) && static_cast<float>(cut_entries) <= rule.lam));
  };
  int64_t lo = rule.min_m < nmax ? rule.min_m : nmax, hi = nmax > 1 ? nmax : 1;
  lo = lo > 1 ? lo : 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi) >> 1;
    if (fits(mid)) hi = mid; else lo = mid + 1;
  }
  const float uncut = fmaxf(static_cast<float>(nmax), rule.lam > 0.f ? work0 / rule.lam : 0.f);
  const int64_t m = rule.forced || static_cast<float>(lo) < 0.95f * uncut ? lo : nmax;
  // The cuts at m; segments first (each the window's longest walks), then the sequences whole.
  // Every sequence has its cuts at m: either m = nmax (one segment each) or the search found m
  // to fit.
  int64_t len[2][kMaxPrefixSegments];
  int64_t segs[2], cut[2], whole[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float unused = 0.f;
    segs[h] = n[h] > 0 ? prefix_cuts(n[h], m, rule.r, rule.smax, &unused, len[h]) : 0;
    cut[h] = segs[h] > 1 ? 1 : 0;
    whole[h] = segs[h] == 1 ? 1 : 0;
  }
  int64_t pos_cut[2], pos_whole[2], slot[2], ncut_entries, nwhole, nslots;
  warp_scan64(cut[0] * segs[0], cut[1] * segs[1], &pos_cut[0], &pos_cut[1], &ncut_entries);
  warp_scan64(whole[0], whole[1], &pos_whole[0], &pos_whole[1], &nwhole);
  warp_scan64(cut[0], cut[1], &slot[0], &slot[1], &nslots);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const WindowSpan& a = sp[h];
    if (whole[h]) map[ncut_entries + pos_whole[h]] = WindowLane{a.k, a.cb, a.cb, a.ce, -1, 1};
    if (!cut[h]) continue;
    int64_t b = a.cb;
    for (int j = 0; j < segs[h]; ++j) {
      map[pos_cut[h] + j] = WindowLane{a.k, a.cb, b, b + len[h][j], slot[h], j + 1 == segs[h] ? 1 : 0};
      b += len[h][j];
    }
    // The start state: the carry slot of the sequence (time-major) past its first window, else
    // its read slot of past_state or of the pool, else zeros.
    SplitStart ss{a.k, 0, 0};
    if (a.cb > 0) {
      ss.kind = 1;
      ss.base = a.k * rule.carry_per_seq;
    } else {
      ResolvedSequence r;
      resolve_sequence(x, tab.seq(a.k), &r);  // true: the table holds only sequences that resolve
      if (r.read >= 0) {
        ss.kind = rule.past ? 2 : 3;
        ss.base = r.read * (rule.past ? rule.past_sb : rule.pres_sb);
      }
    }
    src[slot[h]] = ss;
  }
  for (int64_t e = ncut_entries + nwhole + lane; e < L + X; e += 32) map[e] = WindowLane{-1, 0, 0, 0, -1, 0};
  for (int64_t e = nslots + lane; e < X; e += 32) src[e] = SplitStart{-1, 0, 0};
}

// Time-major calls rank the sequences longest first (a rank count per sequence over all
// others: they have at most kTimeMajorMaxSequences unless a test forces the layout), then
// write the steps' offsets off[c] = sum_k min(cnt_k, c).
// Then the chunk map and the window map (chunked_layout.cuh) for windows of W chunks.
// With X > 0 the window map cuts sequences into prefix segments (split_window).
__global__ void __launch_bounds__(kTableThreads) table_kernel(ServingIndices x, int64_t* table,
                                                              bool time_major, int64_t M, int64_t W,
                                                              int64_t windows, int64_t L, int64_t X,
                                                              SplitRule rule, int64_t* cmap,
                                                              WindowLane* wmap, SplitStart* ssrc) {
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
  // Window map: scan CTA i of window w -> its entry (chunked_layout.cuh).
  if (X == 0) {
    for (int64_t e = threadIdx.x; e < windows * L; e += kTableThreads) {
      WindowSpan sp = window_span(tab, time_major, total, M, W, e / L, e % L);
      wmap[e] = WindowLane{sp.k, sp.cb, sp.cb, sp.ce, -1, 1};
    }
  } else {
    for (int64_t w = threadIdx.x >> 5; w < windows; w += kTableThreads / 32) {
      split_window(x, tab, time_major, total, M, W, w, L, X, rule, wmap + w * (L + X), ssrc + w * X);
    }
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
  auto* wmap = reinterpret_cast<WindowLane*>(ws + w.wmap_off);
  auto* ssrc = reinterpret_cast<SplitStart*>(ws + w.split_src_off);
  table_kernel<<<1, kTableThreads, 0, stream>>>(s.ix, table, w.time_major, w.max_chunks, w.window,
                                                w.windows, w.lanes, w.splits, w.rule, cmap, wmap, ssrc);
  LINATTN_RETURN_IF_ERROR(launch_error("table"));
  edges_kernel<<<static_cast<unsigned>(s.ix.N), 256, 0, stream>>>(p, s.ix);
  LINATTN_RETURN_IF_ERROR(launch_error("edges"));

  // 4. Windows over the global chunk index.
  KernelArgs a{};
  a.p = p;
  a.split = o.split_state;
  a.pw = o.p_warpgroup;
  a.pair = o.pair_slabs;
  a.head = w.head;
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
  a.window_lanes = w.lanes + w.splits;
  a.split_lanes = w.splits;
  a.split_src = ssrc;
  a.split_state = reinterpret_cast<float*>(ws + w.split_state_off);
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
