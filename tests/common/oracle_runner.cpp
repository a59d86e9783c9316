#include "common/oracle_runner.hpp"

#include <cmath>
#include <map>
#include <memory>
#include <sstream>

namespace linattn::test {

double rel_frobenius(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::nan("");
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = a[i] - b[i];
    diff += d * d;
    ref += b[i] * b[i];
  }
  if (std::isnan(diff)) return diff;
  return ref > 0 ? std::sqrt(diff / ref) : std::sqrt(diff);
}

double dtype_tolerance(linattn_dtype stored) {
  const double f32 = 1e-5;
  switch (stored) {
    case LINATTN_BFLOAT16: return std::ldexp(1.0, -8) + f32;
    case LINATTN_FLOAT16: return std::ldexp(1.0, -11) + f32;
    default: return f32;
  }
}

Tolerance default_tolerance(const LinearAttentionCase& c) {
  return {dtype_tolerance(c.act_dtype), dtype_tolerance(c.state_dtype)};
}

Tolerance default_tolerance(const CausalConvCase& c) {
  return {dtype_tolerance(c.act_dtype), dtype_tolerance(c.state_dtype)};
}

bool CaseReport::passed() const {
  // Written as negations so that a NaN error fails.
  return error.empty() && output_nan == 0 && state_nan == 0 && output_padding_ok &&
         state_padding_ok && output_err <= tol.output && state_err <= tol.state;
}

std::string CaseReport::summary() const {
  std::ostringstream s;
  s << name << ": ";
  if (!error.empty()) {
    s << "call failed: " << error;
    return s.str();
  }
  s << "output rel err " << output_err << " (tol " << tol.output << "), state rel err "
    << state_err << " (tol " << tol.state << ")";
  if (output_nan) s << ", " << output_nan << " output elements never written";
  if (state_nan) s << ", " << state_nan << " present_state elements never written";
  if (!output_padding_ok) s << ", output written outside its view";
  if (!state_padding_ok) s << ", present_state written outside its view";
  return s.str();
}

::testing::AssertionResult passed(const CaseReport& r) {
  if (r.passed()) return ::testing::AssertionSuccess() << r.summary();
  return ::testing::AssertionFailure() << r.summary();
}

Context& reference_context() {
  static Context ctx = [] {
    Context c;
    Status s = Context::create(LINATTN_BACKEND_REFERENCE, &c);
    if (!s.ok()) ADD_FAILURE() << "reference context: " << s.to_string();
    return c;
  }();
  return ctx;
}

Context& cpu_context(int num_threads) {
  static std::map<int, std::unique_ptr<Context>> contexts;
  auto& slot = contexts[num_threads];
  if (!slot) {
    slot = std::make_unique<Context>();
    Status s = Context::create(LINATTN_BACKEND_CPU, slot.get(), num_threads);
    if (!s.ok()) ADD_FAILURE() << "cpu context: " << s.to_string();
  }
  return *slot;
}

Status run_oracle(const LinearAttentionCase& c, const LinearAttentionInputs& in,
                  LinearAttentionOutputs* out) {
  const LinearAttentionInputs in64 = to_float64(in);
  *out = make_outputs(c, LINATTN_FLOAT64, LINATTN_FLOAT64, false);
  return linear_attention(reference_context(), make_args(c, in64, *out));
}

Status run_oracle(const CausalConvCase& c, const CausalConvInputs& in, CausalConvOutputs* out) {
  const CausalConvInputs in64 = to_float64(in);
  *out = make_outputs(c, LINATTN_FLOAT64, LINATTN_FLOAT64, false);
  return causal_conv(reference_context(), make_args(c, in64, *out));
}

namespace {

// Replaces a host view by its device mirror (absent views stay absent) and returns the base of
// the mirror. A view that is a slice of the host storage keeps its offset.
void* place(linattn_tensor& view, const HostTensor& t, Placement* pl) {
  if (!t.present()) return nullptr;
  const int64_t offset = static_cast<char*>(view.data) - static_cast<const char*>(t.data());
  void* base = pl->upload(t);
  view.data = static_cast<char*>(base) + offset;
  view.memory = pl->memory();
  return base;
}

}  // namespace

Status run_on(Context& ctx, linattn_linear_attention_args a, const LinearAttentionInputs& in,
              LinearAttentionOutputs& out, Placement* pl) {
  if (pl == nullptr) return linear_attention(ctx, a);
  place(a.query, in.query, pl);
  place(a.key, in.key, pl);
  place(a.value, in.value, pl);
  place(a.past_state, in.past_state, pl);
  place(a.decay, in.decay, pl);
  place(a.beta, in.beta, pl);
  void* out_dev = place(a.output, out.output, pl);
  void* state_dev = place(a.present_state, out.present_state, pl);
  Status s = linear_attention(ctx, a);
  pl->synchronize();
  if (s.ok()) {
    pl->download(out_dev, out.output);
    pl->download(state_dev, out.present_state);
  }
  pl->release_all();
  return s;
}

Status run_on(Context& ctx, linattn_causal_conv_args a, const CausalConvInputs& in,
              CausalConvOutputs& out, Placement* pl) {
  if (pl == nullptr) return causal_conv(ctx, a);
  place(a.input, in.input, pl);
  place(a.weight, in.weight, pl);
  place(a.bias, in.bias, pl);
  place(a.past_state, in.past_state, pl);
  void* out_dev = place(a.output, out.output, pl);
  void* state_dev = place(a.present_state, out.present_state, pl);
  Status s = causal_conv(ctx, a);
  pl->synchronize();
  if (s.ok()) {
    pl->download(out_dev, out.output);
    pl->download(state_dev, out.present_state);
  }
  pl->release_all();
  return s;
}

CaseReport compare(const std::string& name, const HostTensor& output, const HostTensor& state,
                   const HostTensor& oracle_output, const HostTensor& oracle_state,
                   Tolerance tol) {
  CaseReport r;
  r.name = name;
  r.tol = tol;
  r.output_nan = output.count_nan();
  r.state_nan = state.count_nan();
  r.output_padding_ok = output.padding_is_nan();
  r.state_padding_ok = state.padding_is_nan();
  r.output_err = rel_frobenius(output.values(), oracle_output.values());
  r.state_err = rel_frobenius(state.values(), oracle_state.values());
  return r;
}

CaseReport run_case(const LinearAttentionCase& c, Context& ctx, Placement* pl,
                    const Tolerance* tol) {
  const LinearAttentionInputs in = make_inputs(c);
  LinearAttentionOutputs ref;
  CaseReport r;
  r.name = c.name();
  Status s = run_oracle(c, in, &ref);
  if (!s.ok()) {
    r.error = "oracle: " + s.to_string();
    return r;
  }
  LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
  s = run_on(ctx, make_args(c, in, out), in, out, pl);
  if (!s.ok()) {
    r.error = s.to_string();
    return r;
  }
  return compare(c.name(), out.output, out.present_state, ref.output, ref.present_state,
                 tol ? *tol : default_tolerance(c));
}

CaseReport run_case(const CausalConvCase& c, Context& ctx, Placement* pl, const Tolerance* tol) {
  const CausalConvInputs in = make_inputs(c);
  CausalConvOutputs ref;
  CaseReport r;
  r.name = c.name();
  Status s = run_oracle(c, in, &ref);
  if (!s.ok()) {
    r.error = "oracle: " + s.to_string();
    return r;
  }
  CausalConvOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
  s = run_on(ctx, make_args(c, in, out), in, out, pl);
  if (!s.ok()) {
    r.error = s.to_string();
    return r;
  }
  return compare(c.name(), out.output, out.present_state, ref.output, ref.present_state,
                 tol ? *tol : default_tolerance(c));
}

}  // namespace linattn::test
