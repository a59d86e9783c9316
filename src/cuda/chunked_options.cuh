// Knobs of the chunked prefill that tests and benchmarks set explicitly; the library entry
// (chunked_prefill) always uses the defaults.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/chunked_prefill.hpp"

namespace linattn::detail::cuda {

struct ChunkedOptions {
  // Feed the float32 state to the tensor cores as hi + lo 16-bit parts (two products instead of
  // one for Q S and W S; about 8% of the time). Off: the state is rounded once per chunk to the
  // activation type: harmless with decay (gated_delta measured the same), but without decay the
  // state grows and Q S dominates the output, and the bf16 rounding of S breaks 3e-3. The
  // library entry (chunked_prefill) splits only for the rules without decay.
  bool split_state = true;
  // Most chunks per window (0: as many as the workspace bound allows). Tests set it small to
  // cross windows, whose state passes through the float32 carry buffer, on short inputs.
  int64_t max_window_chunks = 0;
  // Bound on the records of one window in bytes (0: kWindowBytes, chunked_layout.cuh).
  // Benchmarks sweep it: fewer windows cost fewer scan prologues and wave tails, more memory.
  size_t window_bytes = 0;
  // Segments scanned in parallel per window (0: the rule in chunked_prefill.cu, from the SM
  // count; n > 0: n, or fewer where a window has fewer chunks). Tests force it to cover the
  // segmented path on small inputs; benchmarks sweep it.
  int segments = 0;
  // How segments after the first find their start state (chunked_layout.cuh): -1 the rule in
  // chunked_prefill.cu (prefix segments for two segments per window, else the local pass and the
  // combine), 0 always the local pass and the combine, 1 always prefix segments (at most
  // kMaxPrefixSegments per window). Serving calls (chunked_serving.cu): -1 the sequences of a
  // time-major window cut into prefix segments where the rule there finds it pays, 0 never,
  // 1 the longest ones cut into `segments` (2 when 0; at most kMaxPrefixSegments) whatever the
  // gain, for tests.
  int prefix = -1;
  // Cost of a chunk the chain walks alone against a chunk with outputs, which sets the lengths
  // of prefix segments (0: kPrefixChainShare, chunked_layout.cuh; else clamped to [0.05, 0.95]).
  // Benchmarks sweep it.
  double prefix_share = 0;
  // The final pass forms P o Q K^T on a fourth warpgroup where it can (d_k = 128, one query head
  // per state, no state split, a wgmma build; chunked_scan.cu). Off: the outputs warpgroup forms
  // it. Tests cover both forms; benchmarks compare them.
  bool p_warpgroup = true;
  // The PW form with two value slabs per head (d_v = 128) runs each head's two slab CTAs as a
  // cluster that forms P o Q K^T once per chunk (chunked_pair.cuh). Off: each CTA forms it.
  // The results are the same to the bit; tests compare the two, benchmarks time them.
  bool pair_slabs = true;
  // Whether the final pass runs one CTA per whole value head (chunked_head.cu: two state chains
  // per SM) or one per 64-column slab (chunked_scan.cu): -1 the rule in chunked_prefill.cu, 0
  // slabs, 1 whole heads wherever they can run (d_k = d_v = 128, the delta rules, one query head
  // per state, no state split, a wgmma build). Tests force both forms; benchmarks compare them.
  int whole_head = -1;
  // Benchmarks time the two kernels apart: off skips the launches of that kernel (the outputs
  // are then not the operator's).
  bool run_prep = true;
  bool run_scan = true;
};

size_t chunked_prefill_workspace_bytes_with(const LinearAttentionParams& p, const ChunkedOptions& o);

Status chunked_prefill_with(const LinearAttentionParams& p, const Exec& e, const ChunkedOptions& o);

}  // namespace linattn::detail::cuda
