// Timing of one prefill call on device-generated inputs (bench/chunked_bench.cu): gated_delta,
// d = 128, bfloat16 q/k/v with unit q and k, float32 state in and out. Shared by the chunked
// table and the length sweep.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cuda/chunked_options.cuh"

namespace linattn::bench {

struct PrefillShape {
  int hqk, hv;  // query/key heads, value heads
  int64_t B, T;
  double target_ms;  // 0 = none
};

enum class PrefillPath {
  kChunked,          // the chunked prefill with the given options
  kChunkedPrepOnly,  // its parallel prep kernel alone
  kRecurrent         // the token-recurrent kernel
};

// Median milliseconds over `reps` timed calls after two warm-ups (events around each call), or
// a negative value after a CUDA error (reported on stderr). `split` (hi + lo state operands) and
// `path` override the options' split_state and run_scan.
double time_prefill(const PrefillShape& s, bool split, PrefillPath path, int reps, detail::cuda::ChunkedOptions o = {});

}  // namespace linattn::bench
