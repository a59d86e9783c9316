// The chunked prefill for serving calls with the knobs of ChunkedOptions (tests force small
// windows to cross them on short inputs; benchmarks time the kernels). The library entry
// (chunked_prefill_serving, cuda/serving.hpp) uses the defaults.
#pragma once

#include <cstddef>

#include "cuda/chunked_options.cuh"
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

// split_state, max_window_chunks, run_prep and run_scan apply; segments do not (serving
// windows are cut over the global chunk index instead, see chunked_serving.cu).
struct ChunkedServingOptions : ChunkedOptions {
  // Lay the sequences out longest first in the global chunk order (up to 2048 sequences), so
  // that the scan CTAs of the longest sequences start first; off (default): call order. On
  // the varlen benchmark (8 sequences of 1024..19456 tokens, H100) longest first measured
  // slower: 5.52 / 5.43 ms against 5.29 / 5.25 ms in call order (default windows / one
  // window): the first windows then hold one long sequence alone (64 CTAs of 132 SMs).
  bool longest_first = false;
};

size_t chunked_prefill_serving_workspace_bytes_with(const LinearAttentionServing& s,
                                                    const ChunkedServingOptions& o);
Status chunked_prefill_serving_with(const LinearAttentionServing& s, const Exec& e,
                                    const ChunkedServingOptions& o);

}  // namespace linattn::detail::cuda
