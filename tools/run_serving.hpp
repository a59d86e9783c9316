// `linattn run --scenario serving`: a continuous-batching simulation over a state pool.
#pragma once

#include <cstdint>

#include "commands.hpp"

namespace linattn::tool {

struct ServingScenarioOptions {
  linattn_backend backend = LINATTN_BACKEND_CPU;
  int threads = 0;
  int q_heads = 2, kv_heads = 4, dk = 64, dv = 64;
  int pool_seqs = 16;        // sequences that can hold a pool slot group at once
  int steps = 64;            // scheduler steps
  double arrival_rate = 0.5; // expected new requests per step
  int prompt_min = 1, prompt_max = 300;
  int gen_min = 4, gen_max = 24;
  int prefill_chunk = 128;   // prefill tokens per sequence per step (chunked prefill)
  int spec_len = 0;          // draft tokens per speculative step (0 = plain decode)
  int64_t seed = 1;
  double tolerance = 1e-4;
};

// Prints the per-phase throughput and the oracle check; returns the exit code.
int run_serving_scenario(const ServingScenarioOptions& o);

// `linattn run --scenario serving-overhead` (run_serving_overhead.cpp): dense against serving
// timings on the CPU: decode of `batch` sequences through a state pool, and varlen prefill of
// batch/8 sequences of `prompt_len` tokens.
int run_serving_overhead(const ServingScenarioOptions& o, int batch, int prompt_len, int repeat);

}  // namespace linattn::tool
