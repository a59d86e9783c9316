// Runs a case on a backend through the public API and on the float64 oracle (the reference
// backend, float64 copies of the same rounded inputs, float64 outputs), and reports how far
// apart they are. Backend-agnostic: a GPU suite passes a Placement that mirrors host tensors
// into device memory; host backends pass none.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/host_tensor.hpp"
#include "linattn/linattn.hpp"

namespace linattn::test {

// ||a - b||_F / ||b||_F in double (||a - b||_F when b is all zeros; 0 for empty tensors).
// NaN anywhere in a gives NaN.
double rel_frobenius(const std::vector<double>& a, const std::vector<double>& b);

// Where the backend under test reads and writes. Device memory is allocated per tensor and
// holds a byte copy of the host storage (padding and poison included).
class Placement {
 public:
  virtual ~Placement() = default;
  virtual linattn_memory memory() const = 0;
  virtual void* upload(const HostTensor& t) = 0;  // allocate + copy; freed by release_all
  virtual void download(const void* device, HostTensor& t) = 0;  // whole storage back
  virtual void synchronize() = 0;  // after the call, before downloads
  virtual void release_all() = 0;
};

struct Tolerance {
  double output = 0, state = 0;
};

// Relative Frobenius tolerance against the oracle, from what the dtypes can represent: float32
// math on float32 data well under 1e-5; 16-bit outputs or state are rounded on store, so their
// error is bounded by the unit roundoff (2^-8 bfloat16, 2^-11 float16) plus the float32 part.
double dtype_tolerance(linattn_dtype stored);
Tolerance default_tolerance(const LinearAttentionCase& c);
Tolerance default_tolerance(const CausalConvCase& c);

struct CaseReport {
  std::string name;
  std::string error;          // non-empty when a call failed
  double output_err = 0, state_err = 0;
  Tolerance tol;
  int64_t output_nan = 0, state_nan = 0;          // unwritten (still poisoned) elements
  bool output_padding_ok = true, state_padding_ok = true;  // nothing written outside the view
  bool passed() const;
  std::string summary() const;
};

::testing::AssertionResult passed(const CaseReport& r);

// The reference backend's context (one per process).
Context& reference_context();
// A CPU-backend context with the given thread count (cached per count).
Context& cpu_context(int num_threads = 0);

// Oracle outputs (float64, packed) for inputs, through the reference backend.
Status run_oracle(const LinearAttentionCase& c, const LinearAttentionInputs& in,
                  LinearAttentionOutputs* out);
Status run_oracle(const CausalConvCase& c, const CausalConvInputs& in, CausalConvOutputs* out);

// Runs args on ctx, moving host tensors through `placement` (may be null for host backends):
// inputs are uploaded, outputs uploaded poisoned and downloaded after the call.
Status run_on(Context& ctx, linattn_linear_attention_args args, const LinearAttentionInputs& in,
              LinearAttentionOutputs& out, Placement* placement);
Status run_on(Context& ctx, linattn_causal_conv_args args, const CausalConvInputs& in,
              CausalConvOutputs& out, Placement* placement);

// Compares outputs of the backend under test with the oracle's.
CaseReport compare(const std::string& name, const HostTensor& output, const HostTensor& state,
                   const HostTensor& oracle_output, const HostTensor& oracle_state,
                   Tolerance tol);

// The whole thing: inputs from the case, oracle run, backend run, comparison.
CaseReport run_case(const LinearAttentionCase& c, Context& ctx, Placement* placement = nullptr,
                    const Tolerance* tol = nullptr);
CaseReport run_case(const CausalConvCase& c, Context& ctx, Placement* placement = nullptr,
                    const Tolerance* tol = nullptr);

}  // namespace linattn::test
