// The CPU benchmark's cases: shapes, analytic byte and FLOP counts, and the timed runner.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu_ceilings.hpp"

namespace linattn::bench {

struct CpuCase {
  std::string op = "attention";  // "attention" or "conv"
  std::string phase = "prefill"; // "prefill" or "decode" (T = 1 / L = 1)
  // LinearAttention
  int64_t B = 1, T = 1;
  int32_t Hq = 16, Hkv = 32, dk = 128, dv = 128;
  std::string rule = "gated_delta";
  std::string dtype = "f32";        // activations
  std::string state_dtype = "f32";
  // CausalConvWithState (B shared)
  int64_t C = 8192, L = 1;
  int32_t K = 4;
  bool silu = true;

  std::string name() const;
  int64_t tokens() const { return op == "conv" ? B * L : B * T; }
  double bytes() const;  // compulsory traffic: inputs + outputs + state read and written
  double flops() const;  // prefill: the chunked form (C = 64); decode: the recurrence
};

struct CpuResult {
  double median_s = 0, best_s = 0;
  int reps = 0;
  double roofline_s = 0;  // max(flops / peak, bytes / copy bandwidth)
  const char* bound = "";  // which of the two sets roofline_s
  double percent_of_roofline() const { return median_s > 0 ? 100.0 * roofline_s / median_s : 0; }
};

// The sweep: the reference shape (16/32 heads, d = 128, gated_delta, conv over 8192 channels,
// width 4) and its tensor-parallel slices 8/16, 4/8, 2/8, over batch, length, rule and dtypes.
std::vector<CpuCase> cpu_sweep(bool quick);

// Times one case on a CPU context with `threads` threads: warm-up, then repeated calls (at least
// 3, about `target_s` seconds in all), median. Decode cases rotate through enough copies of the
// state and inputs to exceed the last-level cache many times over. Returns false with a message
// on a failed call.
bool run_cpu_case(const CpuCase& c, int threads, double target_s, const CpuCeilings& ceil,
                  CpuResult* out, std::string* err);

}  // namespace linattn::bench
