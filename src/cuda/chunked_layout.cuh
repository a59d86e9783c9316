// What the two kernels of the chunked prefill share: tile sizes, the workspace records the
// parallel kernel (chunked_prep.cu) writes and the sequential kernel (chunked_scan.cu) reads,
// and the tile loads both use.
//
// Workspace, for one window of chunks (long calls are cut into windows so that the workspace
// stays bounded; the state crosses windows through a float32 carry buffer). One record per
// (sequence b, kv head h, chunk of the window), index rec = (b * Hkv + h) * nc + chunk:
//   G   float32 [kC]                   prefix sums of g inside the chunk
//   T   16-bit  [kC][kC]               T diag(b), T = (I + A)^-1 (delta rules only); the six
//                                      16 x 16 blocks above the diagonal (zeros) are not
//                                      written: readers zero-fill them
// The sequential kernel reads K, Q and V from the call's tensors, forms the new values as
// U = T diag(b) (V - diag(L) K S) = U' - W S (CHUNKED.md), so W and U' never reach memory, and
// P o Q K^T from its Q and K tiles.
//
// Segments (CHUNKED.md "Across chunks"): when few (sequence, kv head, slab) lanes would leave
// SMs idle, the chunks of a window are cut into nseg segments scanned in parallel. Slot
// s = 0 .. nseg - 1 per (sequence b, kv head h), index (b * Hkv + h) * nseg + s:
//   seg_state float32 [d_k][d_v]  after the local pass: slot 0 the true state at the start of
//                                 segment 0, slot s + 1 the end state of segment s (from the
//                                 true start for s = 0, from zero otherwise); after the combine
//                                 pass: slot s the true state at the start of segment s
//   seg_m     float32 [d_k][d_k]  slot s > 0: transition product of segment s, prod M_c with
//                                 M_c = exp(G_C) I - K^T diag(exp(G_C - G)) W
// Prefix segments (KernelArgs::prefix, a few segments only): no local pass and no combine. The
// prep copies the window's start state to slot 0 as float32; the CTAs of segment s run the chain
// from there over the chunks before their segment without outputs (the chain alone, about half
// of a chunk with outputs), then their own chunks with outputs. The segments shrink
// geometrically so that all end together.
//
// Serving calls (chunked_serving.cu): the chunks of all sequences are numbered globally and
// windows cut that global index space; a record is rec = h * nc + (chunk - c0). The sequences
// that compute are ranked k = 0 .. K-1 (layout order); sequence k has cnt_k = ceil(len / kC)
// chunks (the last one may be partial). Two numberings:
//   sequence-major: all chunks of sequence 0, then of sequence 1, ... (call order). A window
//     holds a few whole sequences; the one that crosses the boundary after window w leaves its
//     state in carry slot w (one sequence per boundary).
//   time-major: the sequences ranked longest first; chunk c of every sequence that has one,
//     then chunk c + 1, ...: global index off[c] + k, off[c] = sum_k min(cnt_k, c). A window
//     holds a time slice of every sequence still running, so long and short sequences scan
//     side by side as in a dense batch; a sequence that crosses a boundary keeps its state in
//     carry slot k (one per sequence).
// chunked_serving.cu writes the table before the windows run (one CTA), so that the kernels of
// the windows find their work with one load each:
//   table int64 [1 + (N + 1) + N + 2N + 1 + (M + 1)] (M: the host's bound on the chunks):
//        K (sequences with chunks), start[0..K] (first sequence-major chunk of each,
//        start[K] = total chunks), seq[0..K) (their n), scratch of the table kernel (chunks
//        per n, the order), then (time-major only) C (the longest count, cnt_0) and
//        off[0..C] (off[C] = total chunks);
//   chunk map int64 [M][2]: per global chunk its first token t0 and (b << 8) | tokens (zero
//        tokens past the real total), for the prep CTAs;
//   window map WindowLane [windows][X + L], L = min(window, N): per window and scan CTA i the
//        sequence rank k (-1: none), the chunks it walks and those it writes outputs for (the
//        sequence's own chunk indices), for the scan CTAs. X > 0 (KernelArgs::split_lanes):
//        time-major calls cut a window's longest sequences into prefix segments as dense calls
//        do (below), each segment an entry of its own: a sequence's chunks [cb, ce) of the
//        window become [cb, b1), [b1, b2), ..., each walked from cb, its chain alone before its
//        own chunks. The table kernel picks the cuts per window from the chunk counts (one warp
//        per window: at most 64 sequences) so that the window's work fills the SMs; the
//        segments come first in the map (they are the window's longest walks), then the
//        sequences left whole;
//   split starts SplitStart [windows][X]: per window and split sequence j the source of its
//        start state, which the prep copies to float32 slot j (KernelArgs::split_state) before
//        the scan: every segment starts there, since the last one writes the end state to the
//        carry slot or the pool slot (in place) the others would read.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "core/params.hpp"
#include "core/serving_params.hpp"
#include "core/status.hpp"
#include "cuda/chunked_mma.cuh"

namespace linattn::detail::cuda::chunked {

constexpr int kC = 64;          // tokens per chunk
constexpr int kSlab = 64;       // value columns per sequential CTA
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kLd = kSlab + 8;  // row stride of 64-wide 16-bit tiles (+8: conflict-free ldmatrix)

// Most prefix segments per window (KernelArgs::prefix), and per sequence of a serving window.
constexpr int kMaxPrefixSegments = 4;

// Prefix segments: the cost of a chunk that a segment's chain walks alone, before its own chunks,
// against a chunk with outputs. First estimated at 0.6 from the chain's cycles per chunk without
// and with the outputs (about 2,500 and 4,300); three rounds of `chunked_bench --prefix-share`
// on the H100 measured 0.5 to 0.6 within 1% on 1x8192 and 1x65536 (0.4 and 0.45 1-3% slower),
// 0.5 the steadiest. Since the slab pairs (chunked_pair.cuh) made a chunk with outputs cheaper,
// two rounds measured 1x65536 at 1.63 / 1.61 / 1.61 / 1.66 ms for 0.5 / 0.55 / 0.6 / 0.65
// (1x8192 flat within 1% up to 0.6).
constexpr double kPrefixChainShare = 0.55;
// The share a call uses: ChunkedOptions::prefix_share (0: the constant above), clamped.
inline double prefix_share(double forced) {
  return forced > 0 ? (forced < 0.05 ? 0.05 : (forced > 0.95 ? 0.95 : forced)) : kPrefixChainShare;
}

// An entry of a serving call's window map (above): the scan CTAs of sequence rank k (-1: none)
// walk its chunks [pbeg, cend) and write the outputs of [cbeg, cend); slot >= 0: a prefix
// segment, whose start state is split slot `slot`; last: it writes the end state (the carry or
// the pool).
struct WindowLane {
  int64_t k, pbeg, cbeg, cend, slot, last;
};

// Where the start state of a window's split sequence comes from (above): kind 0 zeros, 1 the
// carry (float32, element offset base), 2 past_state, 3 present_state (the pool: element
// offset base of the read slot's head 0).
struct SplitStart {
  int64_t k, kind, base;
};

// n / d for 0 <= n < 2^31 by a multiply-high, an add and a shift (d >= 1, set on the host):
// with l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1, n / d = (umulhi(n, m) + n) >> l.
// d is kept for the remainders.
struct DivU32 {
  uint32_t d = 1, m = 1, l = 0;
  DivU32() = default;
  explicit DivU32(uint32_t divisor) : d(divisor) {
    while ((uint64_t{1} << l) < d) ++l;
    m = static_cast<uint32_t>((uint64_t{1} << 32) * ((uint64_t{1} << l) - d) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> l; }
};

struct KernelArgs {
  LinearAttentionParams p;
  bool vec_in;     // q, k, v rows are 16-byte aligned: 16-byte loads
  bool vec_out;    // output rows are 4-byte aligned: paired stores
  bool vec_out16;  // output rows are 16-byte aligned: 16-byte stores
  bool split;      // hi + lo state operands
  bool pw = true;  // P o Q K^T on a fourth warpgroup where the scan has that form (chunked_scan.cu)
  // The two slab CTAs of a value head in the PW form as a cluster that forms P o Q K^T once
  // (chunked_pair.cuh) where the form has two slabs; launch() clears it elsewhere.
  bool pair = true;
  bool head = false;  // the final pass on whole value heads (chunked_head.cu; chunked_prefill.cu decides)
  int64_t c0;    // first chunk of this window
  int64_t nc;    // chunks in this window
  bool first;    // the window starts at the sequence start: the state comes from past
  bool last;     // the window ends the sequence: the state goes to present
  float* g;
  uint16_t* t;   // T diag(b) records (delta rules)
  float* carry;  // float32 [B * Hkv][d_k][d_v] state between windows
  int nseg;          // segments of this window (1: one CTA walks all chunks)
  int64_t seg_len;   // chunks per segment (the last may have fewer)
  bool local;        // local pass: segment end states and transition products, no outputs
  float* seg_state;
  float* seg_m;
  // Prefix segments (final pass of dense calls, above): segment s outputs chunks
  // [seg_bnd[s], seg_bnd[s + 1]) after its chain walked the chunks before them from slot 0.
  bool prefix = false;
  int64_t seg_bnd[kMaxPrefixSegments + 1] = {};
  linattn_dtype gate_dtype = LINATTN_FLOAT32;  // decay and beta (act_dtype, or float32 when
                                               // the serving pre-pass computed the gates)
  // Serving calls (see above): p.B is the batch of the token tensors; sequences come from ix.
  bool serving = false;
  ServingIndices ix;
  const int64_t* table = nullptr;
  int64_t window_chunks = 0;  // chunks per window (carry slot of a boundary: c0 / window_chunks)
  bool time_major = false;    // the global chunk numbering (above)
  const int64_t* chunk_map = nullptr;
  const WindowLane* window_map = nullptr;
  int64_t window_lanes = 0;   // X + L of the window map
  // Prefix segments of serving windows (above): X entries at the head of each window's map, the
  // sources of the split sequences' start states and their float32 copies [X][Hkv][d_k][d_v].
  int64_t split_lanes = 0;
  const SplitStart* split_src = nullptr;
  float* split_state = nullptr;
  // The prep's index divisors (chunked_prep.cu sets them at its launch): by nc, by the head
  // groups of a sequence and by the value heads per key head.
  DivU32 div_nc, div_groups, div_kv_per_k;
  int prep_nh = 1;  // value heads per prep CTA (div_groups.d: prep CTAs per sequence and chunk)
};

// (sequence, state head) pairs whose chains a window's final or local pass runs: every one of a
// dense batch; in a serving call the sequences with chunks in the window, at most its nc chunks,
// and the extra prefix segments of its split sequences.
inline int64_t window_state_lanes(const KernelArgs& a) {
  return (a.serving ? (a.nc < a.ix.N ? a.nc : a.ix.N) + a.split_lanes : a.p.B) * a.p.Hkv;
}

// Bytes of one state element (device code has no other dtype table).
__host__ __device__ __forceinline__ int64_t elem_bytes(linattn_dtype t) {
  return t == LINATTN_FLOAT64 ? 8 : (t == LINATTN_FLOAT32 ? 4 : 2);
}

// The sequence table of a serving call (layout above).
struct SeqTable {
  const int64_t* t;
  int64_t N;
  __device__ __forceinline__ int64_t count() const { return t[0]; }
  __device__ __forceinline__ int64_t start(int64_t k) const { return t[1 + k]; }
  __device__ __forceinline__ int64_t seq(int64_t k) const { return t[N + 2 + k]; }
  __device__ __forceinline__ int64_t total() const { return start(count()); }
  // The last i in [0, n) with key(i) <= x, for a non-decreasing key with key(0) <= x.
  template <class Key>
  __device__ __forceinline__ static int64_t last_at_most(int64_t n, int64_t x, Key key) {
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) >> 1;
      if (key(mid) <= x) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  // Sequence-major: the sequence holding global chunk c (c < total()).
  __device__ __forceinline__ int64_t find(int64_t c) const {
    return last_at_most(count(), c, [this](int64_t k) { return start(k); });
  }
  // Time-major: the longest chunk count and the first global chunk of step c (c <= steps()).
  __device__ __forceinline__ int64_t steps() const { return t[4 * N + 2]; }
  __device__ __forceinline__ int64_t off(int64_t c) const { return t[4 * N + 3 + c]; }
  // The step holding global chunk g (g < total()).
  __device__ __forceinline__ int64_t step_of(int64_t g) const {
    return last_at_most(steps(), g, [this](int64_t c) { return off(c); });
  }
  // The first step c in [0, hi] whose chunk of sequence k has global index >= g (hi if none
  // before it): off is strictly increasing up to steps().
  __device__ __forceinline__ int64_t first_step_from(int64_t g, int64_t k, int64_t hi) const {
    int64_t lo = 0;
    while (lo < hi) {
      const int64_t mid = (lo + hi) >> 1;
      if (off(mid) + k >= g) hi = mid; else lo = mid + 1;
    }
    return lo;
  }
};

// Tokens of sequence n of a serving call whose indices resolve (batch row, first token, length).
__device__ __forceinline__ void sequence_tokens(const ServingIndices& x, int64_t n, int64_t* b,
                                                int64_t* t0, int64_t* len) {
  if (x.packed) {
    *b = 0;
    *t0 = x.cu_seqlens.at(n);
    *len = x.cu_seqlens.at(n + 1) - *t0;
  } else {
    *b = n;
    *t0 = 0;
    *len = x.T;
  }
}

// An entry of the chunk map (above).
struct ChunkTokens {
  int64_t b, t0;
  int n;
};
__device__ __forceinline__ ChunkTokens chunk_tokens(const int64_t* map, int64_t g) {
  const longlong2 e = *reinterpret_cast<const longlong2*>(map + 2 * g);
  return ChunkTokens{e.y >> 8, e.x, static_cast<int>(e.y & 255)};
}

// Eight 16-bit elements from an address without 16-byte alignment, packed as one 16-byte value.
__device__ __forceinline__ uint4 load8_unaligned(const uint16_t* s) {
  return make_uint4(s[0] | (static_cast<uint32_t>(s[1]) << 16), s[2] | (static_cast<uint32_t>(s[3]) << 16),
                    s[4] | (static_cast<uint32_t>(s[5]) << 16), s[6] | (static_cast<uint32_t>(s[7]) << 16));
}

// Rows [0, n) of a 64 x COLS tile from global memory (row stride `stride` elements), zeros below.
// Aligned rows go through cp.async with the L2 policy pol (visible after cp_async_wait_all and a
// barrier); others are copied synchronously.
template <int COLS>
__device__ __forceinline__ void load_tile(uint16_t* dst, int ld, const uint16_t* src,
                                          int64_t stride, int n, bool vec, uint64_t pol) {
  constexpr int kVpr = COLS / 8;
  if (vec) {
    // Thread t copies 16 bytes of rows t / kVpr + k kRows: one row pointer, stepped.
    constexpr int kRows = kThreads / kVpr;
    static_assert(kThreads % kVpr == 0 && kC % kRows == 0, "whole rows per pass");
    const int r0 = static_cast<int>(threadIdx.x / kVpr), cv = static_cast<int>(threadIdx.x % kVpr) * 8;
    const uint16_t* s = src + r0 * stride + cv;
    uint16_t* d = dst + r0 * ld + cv;
#pragma unroll
    for (int k = 0; k < kC / kRows; ++k) {
      const bool valid = r0 + k * kRows < n;
      cp_async16(d + k * kRows * ld, valid ? s + k * kRows * stride : src, valid, pol);
    }
    return;
  }
  for (int i = threadIdx.x; i < kC * kVpr; i += kThreads) {
    const int r = i / kVpr, cv = (i % kVpr) * 8;
    *reinterpret_cast<uint4*>(dst + r * ld + cv) = r < n ? load8_unaligned(src + r * stride + cv) : make_uint4(0u, 0u, 0u, 0u);
  }
}

// Workspace pointers and record counts for one call (host side).
struct WorkspacePlan {
  int64_t window = 0;  // chunks per window
  int64_t windows = 0;
  int nseg = 1;        // most segments per window
  size_t g_off = 0, t_off = 0, carry_off = 0, seg_state_off = 0, seg_m_off = 0,
         total = 0;
};

// Upper bound on the workspace records of one window, dense and serving calls: with 32 value
// heads and the delta rule (records of about 8.3 KB per chunk and kv head) it holds about
// 19 x 8192 tokens. Each window costs the scan a prologue (start state,
// first loads) and a partial last wave per CTA lane; on the H100, with the former 64 KB records,
// 8 x 8192 at 32 value heads took 4.19 ms with 320 MiB (7 windows), 3.86 ms with 640 MiB (4),
// 3.77 ms with 1 GiB and 3.68 ms with 2 GiB (chunked_bench --window-mb).
constexpr size_t kWindowBytes = size_t{640} << 20;

// Workspace regions start on 256-byte boundaries.
inline size_t align256(size_t x) { return (x + 255) & ~size_t{255}; }

// Bytes of each record of one (sequence, kv head, chunk) (layout above).
struct RecordBytes {
  size_t g, t;
  explicit RecordBytes(const LinearAttentionParams& p) : g(kC * 4), t(p.delta ? size_t{kC} * kC * 2 : 0) {}
  size_t total() const { return g + t; }
};

// Offsets of the two record regions for `recs` records from `base`; returns their end.
inline size_t record_regions(const LinearAttentionParams& p, size_t recs, size_t base, size_t* g_off,
                             size_t* t_off) {
  const RecordBytes r(p);
  *g_off = base;
  *t_off = align256(*g_off + recs * r.g);
  return align256(*t_off + recs * r.t);
}

// The access flags of a.p: q, k, v rows that load as 16-byte vectors (cp.async tiles) and
// output rows that store as 4-byte pairs.
inline void set_vector_access(KernelArgs& a) {
  const LinearAttentionParams& p = a.p;
  auto aligned = [](const void* ptr, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(ptr) % bytes == 0; };
  a.vec_in = aligned(p.q, 16) && aligned(p.k, 16) && aligned(p.v, 16) && p.q_sb % 8 == 0 &&
             p.q_st % 8 == 0 && p.k_sb % 8 == 0 && p.k_st % 8 == 0 && p.v_sb % 8 == 0 &&
             p.v_st % 8 == 0;
  a.vec_out = aligned(p.out, 4) && p.o_sb % 2 == 0 && p.o_st % 2 == 0;
  a.vec_out16 = aligned(p.out, 16) && p.o_sb % 8 == 0 && p.o_st % 8 == 0;
}

// The kernels of one window, launched in this order on `stream`: prep, then with segments the
// scan's local pass (a.local) and the combine over segments, then the scan.
Status launch_prep(const KernelArgs& a, cudaStream_t stream);
Status launch_scan(const KernelArgs& a, cudaStream_t stream);
// The final pass on whole value heads (chunked_head.cu): whether it can run calls of these
// parameters (with the state split or not), and its launch.
bool head_pass_applies(const LinearAttentionParams& p, bool split);
Status launch_head_scan(const KernelArgs& a, cudaStream_t stream);
// Whether a call whose final pass walks `sequences` sequences at once runs it on whole heads
// (chunked_prefill.cu: where it can, by ChunkedOptions::whole_head, -1 the rule there).
bool whole_heads(const LinearAttentionParams& p, int64_t sequences, bool split, int mode);
Status launch_combine(const KernelArgs& a, cudaStream_t stream);
// SMs of the current device (0 when it cannot be asked).
int sm_count();
// Dynamic shared memory of the scan kernel at key head dim dk (64 or 128).
size_t scan_smem(int dk);
// CTAs of the scan's final pass (local = false) or local pass that one SM of the current device
// holds at once (bf16, delta rule; 0 when the device cannot be asked): on sm_90 one and two.
int scan_ctas_per_sm(int dk, bool local);
// Whether the current device holds a cluster of the final pass's paired slab CTAs.
bool scan_pairs_fit();

}  // namespace linattn::detail::cuda::chunked
