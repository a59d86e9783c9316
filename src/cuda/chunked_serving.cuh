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
size_t chunked_prefill_serving_workspace_bytes_with(const LinearAttentionServing& s,
                                                    const ChunkedOptions& o);
Status chunked_prefill_serving_with(const LinearAttentionServing& s, const Exec& e,
                                    const ChunkedOptions& o);

}  // namespace linattn::detail::cuda
