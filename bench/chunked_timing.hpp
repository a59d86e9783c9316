// Timing of one prefill call on device-generated inputs (bench/chunked_bench.cu): gated_delta,
// d = 128, bfloat16 q/k/v with unit q and k, float32 state in and out. Shared by the chunked
// table and the length sweep.
#pragma once

#include <cstddef>
#include <cstdint>

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

// Knobs of the chunked path (the library's ChunkedOptions; zero / -1: the library's rule).
struct ChunkedKnobs {
  int segments = 0;          // forced segments per window
  size_t window_bytes = 0;   // record bound per window
  int prefix = -1;           // prefix segments: -1 the rule, 0 never, 1 always
  double prefix_share = 0;   // chain-alone share that sets the prefix segments' lengths
};

// Median milliseconds over `reps` timed calls after two warm-ups (events around each call), or
// a negative value after a CUDA error (reported on stderr). `split`: hi + lo state operands.
double time_prefill(const PrefillShape& s, bool split, PrefillPath path, int reps, const ChunkedKnobs& knobs = {});

}  // namespace linattn::bench
