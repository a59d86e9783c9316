// Chunked (WY-form) prefill on tensor cores (CHUNKED.md), as two kernels per window of chunks:
// chunked_prep.cu computes everything that does not depend on the state for all chunks at once
// (fully parallel) and writes it to the workspace; chunked_scan.cu then walks the chunks of each
// (sequence, kv head, value slab) in order doing only the state-dependent products (or, for the
// final pass where the rule below prefers it, chunked_head.cu walks whole value heads). Long calls
// are cut into windows so that the workspace stays bounded; between windows the state crosses a
// float32 carry buffer in the workspace. When the (sequence, kv head, slab) lanes would leave
// SMs idle, each window's chunks are also cut into segments scanned in parallel: a local pass
// (end states from zero and transition products), a short combine over segments, then the
// final pass from every segment's true start; with two segments, prefix segments instead: the
// final pass alone, each segment's chain walking the chunks before it without outputs
// (chunked_layout.cuh).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_options.cuh"
#include "cuda/chunked_prefill.hpp"

namespace linattn::detail::cuda {
namespace chunked {
namespace {

// Segments: at most this many per window, of at least this many chunks each (chosen by the
// rule; a forced count only keeps segments non-empty).
constexpr int kMaxSegments = 16;
constexpr int64_t kMinSegmentChunks = 8;

}  // namespace

// SMs of the current device (the entries make the context's device current).
int sm_count() {
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return device_attribute<cudaDevAttrMultiProcessorCount>(dev);
}

// Whether the final pass runs on whole value heads (chunked_head.cu) where it can. A CTA on a
// whole head does a chunk of both slabs in about 1.6 times the time a slab CTA takes for one
// (3.2 against 2.0 us on the H100), but there are half as many lanes. By measurement
// (`chunked_bench --state hi`, H100, ms, whole heads / slabs): 8 x 8192 (256 heads) 1.12 /
// 1.31, 32 x 1024 0.63 / 0.72, 2/8 heads 1 x 65536 (8 heads, 16 / 8 segments) 0.612 / 0.638;
// but 1 x 8192 (32 heads) 0.292 with four prefix segments / 0.249 with two, 1 x 65536 2.14 /
// 1.79, 16/64 heads 1 x 32768 (64 heads) 1.43 / 1.33. So whole heads where the slabs would
// take more than one wave (2 B H > SMs), or so few lanes that either form takes many segments
// (slab lanes at most SMs / 8); slabs between, where their extra lanes fill the GPU with fewer
// or no segments. Re-measured with the slab pairs (chunked_pair.cuh), whole heads / slabs:
// 8 x 8192 1.01 / 1.22, 32 x 1024 0.58 / 0.70, 2/8 heads 1 x 65536 0.48-0.49 / 0.54.
bool whole_heads(const LinearAttentionParams& p, int64_t sequences, bool split, int mode) {
  if (!head_pass_applies(p, split)) return false;
  if (mode >= 0) return mode > 0;
  const int64_t slab_lanes = sequences * p.Hkv * (p.dv / kSlab), sms = sm_count();
  return slab_lanes > sms || 8 * slab_lanes <= sms;
}

namespace {
bool dense_whole_heads(const LinearAttentionParams& p, const ChunkedOptions& o) {
  return whole_heads(p, p.B, o.split_state, o.whole_head);
}

// Most segments per window. The final pass runs lanes x segments CTAs of one per SM; the rule
// fills about one wave with them (the local pass then has up to twice as many CTAs, which on
// sm_90 fit two per SM: measured within 1.5% of the best forced count on every row).
int segments(const LinearAttentionParams& p, int64_t nch, const ChunkedOptions& o) {
  if (o.segments > 0) return static_cast<int>(std::min<int64_t>(o.segments, std::max<int64_t>(1, nch)));
  // The final pass on whole heads has one lane per (sequence, state head), else one per slab.
  const int64_t lanes = p.B * p.Hkv * (dense_whole_heads(p, o) ? 1 : p.dv / kSlab);
  int64_t n = lanes > 0 ? sm_count() / lanes : 1;
  n = std::min<int64_t>({n, kMaxSegments, nch / kMinSegmentChunks});
  return static_cast<int>(std::max<int64_t>(1, n));
}

// Whether a window of nseg segments takes prefix segments: by the rule, for two. With r the
// share above and nc chunks, in chunk times with outputs: two segments take nc (1 + r) / 2 with
// the local pass and the final pass, nc r / (1 - (1 - r)^2) as prefix segments (0.75 nc
// against 0.67 nc at r = 0.5); three take nc (1 + r) / 3 against nc r / (1 - (1 - r)^3) (0.50
// against 0.57), and the local pass's extra CTAs fit two per SM.
bool use_prefix(const ChunkedOptions& o, int nseg) {
  if (nseg < 2) return false;
  return o.prefix < 0 ? nseg == 2 : o.prefix > 0;
}

// The bounds of n prefix segments of a window of nc >= n chunks. Segment s walks its
// predecessors' chunks alone (share r each) and its own with outputs; equal times for all give
// lengths proportional to (1 - r)^s. Every segment keeps at least one chunk.
void prefix_bounds(int n, int64_t nc, double share, int64_t* bnd) {
  const double r = prefix_share(share);
  const double q = 1.0 - r, total = 1.0 - std::pow(q, n);
  bnd[0] = 0;
  for (int s = 1; s < n; ++s) {
    const auto x = static_cast<int64_t>(std::llround(static_cast<double>(nc) * (1.0 - std::pow(q, s)) / total));
    bnd[s] = std::min<int64_t>(std::max<int64_t>(x, bnd[s - 1] + 1), nc - (n - s));
  }
  bnd[n] = nc;
}

// Segments of a window of nc chunks, none of them empty.
int window_segments(int nseg, int64_t nc, bool forced, int64_t* seg_len) {
  int64_t n = std::min<int64_t>(nseg, forced ? nc : nc / kMinSegmentChunks);
  n = std::max<int64_t>(1, n);
  *seg_len = std::max<int64_t>(1, (nc + n - 1) / n);
  return static_cast<int>(std::max<int64_t>(1, (nc + *seg_len - 1) / *seg_len));
}

WorkspacePlan plan(const LinearAttentionParams& p, const ChunkedOptions& o) {
  WorkspacePlan w;
  const int64_t max_window = o.max_window_chunks;
  const int64_t nch = (p.T + kC - 1) / kC;
  const int64_t heads = p.B * p.Hkv;
  if (nch == 0 || heads == 0) return w;
  w.nseg = segments(p, nch, o);
  const size_t per_chunk = RecordBytes(p).total();
  const size_t budget = o.window_bytes > 0 ? o.window_bytes : kWindowBytes;
  int64_t fit = std::max<int64_t>(1, static_cast<int64_t>(budget / (per_chunk * heads)));
  if (max_window > 0) fit = std::min(fit, max_window);
  w.windows = (nch + fit - 1) / fit;
  w.window = (nch + w.windows - 1) / w.windows;
  const size_t recs = static_cast<size_t>(heads * w.window);
  w.carry_off = record_regions(p, recs, 0, &w.g_off, &w.t_off);
  w.seg_state_off = align256(w.carry_off + (w.windows > 1 ? static_cast<size_t>(heads) * p.dk * p.dv * 4 : 0));
  const size_t slots = w.nseg > 1 ? static_cast<size_t>(heads) * w.nseg : 0;
  w.seg_m_off = align256(w.seg_state_off + slots * p.dk * p.dv * 4);
  w.total = w.seg_m_off + slots * p.dk * p.dk * 4;
  return w;
}

bool state_dtype_ok(linattn_dtype t) {
  return t == LINATTN_FLOAT32 || t == LINATTN_FLOAT16 || t == LINATTN_BFLOAT16;
}

// The most dynamic shared memory a block of device_id may opt into.
int optin_smem(int device_id) { return device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(device_id); }

}  // namespace
}  // namespace chunked

size_t chunked_prefill_smem_bytes(int dk) { return chunked::scan_smem(dk); }

bool chunked_prefill_fits_device(int dk, int device_id) {
  return chunked_prefill_smem_bytes(dk) <= static_cast<size_t>(chunked::optin_smem(device_id));
}

int chunked_prefill_scan_ctas_per_sm(int dk, bool local_pass) { return chunked::scan_ctas_per_sm(dk, local_pass); }

bool chunked_prefill_slab_pairs_fit() { return chunked::scan_pairs_fit(); }

Status chunked_prefill_check_device(int dk, int device_id) {
  if (chunked_prefill_fits_device(dk, device_id)) return Status::ok_status();
  return unsupported("chunked prefill: the scan at d_k = " + std::to_string(dk) + " needs " +
                     std::to_string(chunked_prefill_smem_bytes(dk)) +
                     " bytes of shared memory per block, device " + std::to_string(device_id) +
                     " grants " + std::to_string(chunked::optin_smem(device_id)));
}

bool chunked_prefill_supports(const LinearAttentionParams& p) {
  // float32 activations stay on the exact recurrent kernel; per-key-dim decay would need
  // sub-chunk reference points (CHUNKED.md) and also takes the recurrent kernel.
  if (p.act_dtype != LINATTN_BFLOAT16 && p.act_dtype != LINATTN_FLOAT16) return false;
  if ((p.dk != 64 && p.dk != 128) || (p.dv != 64 && p.dv != 128)) return false;
  if (p.decay != nullptr && p.decay_per_key_dim) return false;
  if (p.past != nullptr && !chunked::state_dtype_ok(p.past_dtype)) return false;
  return chunked::state_dtype_ok(p.present_dtype);
}

size_t chunked_prefill_workspace_bytes_with(const LinearAttentionParams& p, const ChunkedOptions& o) {
  return chunked_prefill_supports(p) ? chunked::plan(p, o).total : 0;
}

namespace {
// The library's options. With decay the state forgets and its bf16 rounding stays below the
// other error terms (measured the same at T = 4096 and 65536); without decay it grows and needs
// the split. (The split also decides the segments: the final pass on whole heads has half the
// lanes.)
ChunkedOptions library_options(const LinearAttentionParams& p) {
  ChunkedOptions o;
  o.split_state = !p.gated;
  return o;
}
}  // namespace

size_t chunked_prefill_workspace_bytes(const LinearAttentionParams& p) {
  return chunked_prefill_workspace_bytes_with(p, library_options(p));
}

Status chunked_prefill_with(const LinearAttentionParams& p, const Exec& e, const ChunkedOptions& o) {
  if (!chunked_prefill_supports(p)) return unsupported("chunked prefill: unsupported configuration");
  if (p.B == 0) return Status::ok_status();
  LINATTN_RETURN_IF_ERROR(chunked_prefill_check_device(p.dk, e.device_id));
  chunked::KernelArgs a;
  a.p = p;
  a.split = o.split_state;
  a.pw = o.p_warpgroup;
  a.pair = o.pair_slabs;
  a.head = chunked::dense_whole_heads(p, o);
  a.gate_dtype = p.act_dtype;
  chunked::set_vector_access(a);
  const chunked::WorkspacePlan w = chunked::plan(p, o);
  if (e.workspace_bytes < w.total || (w.total > 0 && e.workspace == nullptr)) {
    return Status(LINATTN_ERROR_INTERNAL, "chunked prefill: workspace of " + std::to_string(e.workspace_bytes) +
                                              " bytes, expected at least " + std::to_string(w.total));
  }
  auto* ws = static_cast<unsigned char*>(e.workspace);
  a.g = reinterpret_cast<float*>(ws + w.g_off);
  a.t = reinterpret_cast<uint16_t*>(ws + w.t_off);
  a.carry = reinterpret_cast<float*>(ws + w.carry_off);
  a.seg_state = reinterpret_cast<float*>(ws + w.seg_state_off);
  a.seg_m = reinterpret_cast<float*>(ws + w.seg_m_off);
  a.local = false;
  auto stream = static_cast<cudaStream_t>(e.stream);
  const int64_t nch = (p.T + chunked::kC - 1) / chunked::kC;
  // At least one scan launch, so that T = 0 still copies past to present.
  int64_t c0 = 0;
  do {
    a.c0 = c0;
    a.nc = std::min<int64_t>(w.window, nch - c0);
    a.first = c0 == 0;
    a.last = c0 + a.nc >= nch;
    a.nseg = chunked::window_segments(w.nseg, a.nc, o.segments > 0, &a.seg_len);
    a.prefix = chunked::use_prefix(o, a.nseg);
    if (a.prefix) {
      a.nseg = std::min(a.nseg, chunked::kMaxPrefixSegments);
      chunked::prefix_bounds(a.nseg, a.nc, o.prefix_share, a.seg_bnd);
    }
    if (o.run_prep) {
      const Status st = chunked::launch_prep(a, stream);
      if (!st.ok()) return st;
    }
    if (o.run_scan && a.nseg > 1 && !a.prefix) {
      chunked::KernelArgs la = a;
      la.local = true;
      Status st = chunked::launch_scan(la, stream);
      if (st.ok()) st = chunked::launch_combine(a, stream);
      if (!st.ok()) return st;
    }
    if (o.run_scan) {
      const Status st = chunked::launch_scan(a, stream);
      if (!st.ok()) return st;
    }
    c0 += a.nc;
  } while (c0 < nch);
  return Status::ok_status();
}

Status chunked_prefill(const LinearAttentionParams& p, const Exec& e) {
  return chunked_prefill_with(p, e, library_options(p));
}

}  // namespace linattn::detail::cuda
