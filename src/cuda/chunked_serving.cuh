// The chunked prefill for serving calls with the knobs of ChunkedOptions (tests force small
// windows to cross them on short inputs; benchmarks time the kernels). The library entry
// (chunked_prefill_serving, cuda/serving.hpp) uses the defaults.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/chunked_options.cuh"
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

// split_state, max_window_chunks, whole_head, prefix, prefix_share, run_prep and run_scan
// apply; segments only with prefix = 1 (serving windows are cut over the global chunk index, and
// their sequences into prefix segments by the rule in chunked_serving.cu).
struct ChunkedServingOptions : ChunkedOptions {
  // How the chunks of all sequences are numbered, which decides what one window holds
  // (chunked_layout.cuh). kAuto: time-major when the call has at most kTimeMajorMaxSequences
  // sequences (their float32 carry states then stay bounded), sequence-major otherwise.
  enum class Layout { kAuto, kSequenceMajor, kTimeMajor };
  Layout layout = Layout::kAuto;
};

// Time-major windows keep one float32 carry state per sequence (when the call spans several
// windows), so they are taken for calls of at most this many sequences.
constexpr int64_t kTimeMajorMaxSequences = 64;

size_t chunked_prefill_serving_workspace_bytes_with(const LinearAttentionServing& s,
                                                    const ChunkedServingOptions& o);
Status chunked_prefill_serving_with(const LinearAttentionServing& s, const Exec& e,
                                    const ChunkedServingOptions& o);

}  // namespace linattn::detail::cuda
