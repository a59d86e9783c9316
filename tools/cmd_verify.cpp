// `linattn verify`: random cases on the chosen device against the float64 oracle (the
// reference backend). A built-in sweep by default, or one case described by the options.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_options.hpp"
#include "commands.hpp"
#include "tensor_data.hpp"
#include "tolerance.hpp"

namespace linattn::tool {
namespace {

struct AttentionCase {
  std::string rule = "gated_delta";
  int B = 1, T = 65, hq = 4, nk = 4, hkv = 4, dk = 32, dv = 32;
  linattn_dtype act = LINATTN_FLOAT32, state = LINATTN_FLOAT32;
  bool decay_per_key = false, beta_shared = false, past = true, fused = false;
};

struct ConvCase {
  int B = 2, C = 64, L = 33, k = 4;
  bool silu = true, channels_last = true, bias = true, past = true;
  linattn_dtype act = LINATTN_FLOAT32, state = LINATTN_FLOAT32;
};

struct VerifyOptions {
  std::string device = "cpu";
  int threads = 0;
  int64_t seed = 1;
  double tolerance = 0;  // 0 = by dtype
  bool single = false;
  std::string op = "linear-attention";
  AttentionCase la;
  ConvCase conv;
  std::string decay = "per-head", beta = "per-head", activation = "silu";
  bool no_past = false, no_bias = false, channels_first = false;
};

std::vector<AttentionCase> attention_sweep() {
  std::vector<AttentionCase> v;
  auto add = [&](const char* rule, int B, int T, int hq, int nk, int hkv, int dk, int dv,
                 linattn_dtype act, linattn_dtype state, bool per_key, bool shared, bool past,
                 bool fused) {
    AttentionCase c;
    c.rule = rule;
    c.B = B, c.T = T, c.hq = hq, c.nk = nk, c.hkv = hkv, c.dk = dk, c.dv = dv;
    c.act = act, c.state = state;
    c.decay_per_key = per_key, c.beta_shared = shared, c.past = past, c.fused = fused;
    v.push_back(c);
  };
  const auto F32 = LINATTN_FLOAT32, F16 = LINATTN_FLOAT16, BF16 = LINATTN_BFLOAT16;
  add("linear", 2, 1, 4, 4, 4, 16, 16, F32, F32, false, false, false, false);
  add("linear", 1, 65, 4, 4, 4, 32, 32, F32, F32, false, false, true, false);
  add("gated", 2, 63, 4, 4, 4, 32, 32, F32, F32, false, false, true, false);
  add("gated", 1, 64, 2, 2, 2, 64, 32, F32, F32, true, false, true, true);
  add("delta", 2, 65, 4, 4, 4, 32, 64, F32, F32, false, false, true, false);
  add("delta", 1, 1, 4, 4, 4, 64, 64, F32, F32, false, true, true, false);
  add("gated_delta", 1, 1, 4, 4, 4, 128, 128, F32, F32, false, false, true, false);
  add("gated_delta", 2, 127, 4, 4, 4, 32, 32, F32, F32, false, false, true, false);
  add("gated_delta", 1, 129, 2, 2, 4, 64, 64, F32, F32, false, false, true, true);   // inverse GQA
  add("gated_delta", 1, 65, 8, 4, 4, 32, 32, F32, F32, false, false, true, false);   // GQA
  add("gated_delta", 1, 33, 8, 1, 1, 32, 32, F32, F32, false, true, true, false);    // MQA
  add("gated_delta", 1, 70, 4, 2, 4, 32, 32, F32, F32, false, false, false, false);  // key sharing
  add("gated_delta", 1, 65, 2, 2, 8, 32, 32, F32, F32, true, false, true, true);     // per-key decay
  add("gated_delta", 2, 100, 4, 4, 4, 32, 32, F32, F32, false, true, false, false);  // shared beta
  add("gated_delta", 1, 64, 2, 2, 4, 128, 128, F32, F32, false, false, true, true);
  add("gated_delta", 1, 65, 4, 4, 4, 64, 64, F16, F32, false, false, true, false);
  add("gated_delta", 1, 65, 4, 4, 4, 64, 64, BF16, F32, false, false, true, true);
  add("gated_delta", 1, 65, 4, 4, 4, 64, 64, BF16, BF16, false, false, true, false);
  add("gated", 1, 65, 4, 4, 4, 64, 64, F16, F16, true, false, true, false);
  add("gated_delta", 1, 1, 2, 2, 4, 128, 128, BF16, F32, false, false, true, true);   // decode
  return v;
}

std::vector<ConvCase> conv_sweep() {
  std::vector<ConvCase> v;
  auto add = [&](int B, int C, int L, int k, bool silu, bool cl, bool bias, bool past,
                 linattn_dtype act, linattn_dtype state) {
    v.push_back(ConvCase{B, C, L, k, silu, cl, bias, past, act, state});
  };
  const auto F32 = LINATTN_FLOAT32, F16 = LINATTN_FLOAT16, BF16 = LINATTN_BFLOAT16;
  add(2, 64, 33, 4, true, true, false, true, F32, F32);
  add(1, 96, 1, 4, true, true, false, true, F32, F32);  // decode step
  add(2, 16, 2, 5, false, false, true, true, F32, F32);  // L < k-1
  add(1, 32, 17, 1, false, false, true, false, F32, F32);
  add(2, 48, 40, 3, true, false, true, false, F32, F32);
  add(1, 256, 65, 4, true, true, false, true, BF16, F32);
  add(1, 64, 9, 4, true, false, true, true, F16, F16);
  return v;
}

// Prints one line per case and returns whether both errors are within the tolerance.
bool report(const std::string& what, double e_out, double e_state, double tol) {
  const bool ok = std::isfinite(e_out) && e_out <= tol && std::isfinite(e_state) && e_state <= tol;
  std::printf("  %-66s output %.2e  state %.2e  (tol %.0e)  %s\n", what.c_str(), e_out, e_state,
              tol, ok ? "PASS" : "FAIL");
  return ok;
}

std::string describe(const AttentionCase& c) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), "la %-11s B=%d T=%-3d H_q=%d n_k=%d H_kv=%d d=%d/%d %s/%s%s%s%s%s",
                c.rule.c_str(), c.B, c.T, c.hq, c.nk, c.hkv, c.dk, c.dv, short_dtype_name(c.act),
                short_dtype_name(c.state), c.decay_per_key ? " dkey" : "",
                c.beta_shared ? " b1" : "", c.past ? " past" : "", c.fused ? " fused" : "");
  return buf;
}

bool fail_msg(const std::string& what, const std::string& err) {
  std::printf("  %s: error: %s  FAIL\n", what.c_str(), err.c_str());
  return false;
}

bool verify_attention(const AttentionCase& c, const DeviceChoice& dev, Context& ctx,
                      Context& oracle, Random& rng, double tol_override) {
  const std::string name = describe(c);
  const int64_t B = c.B, T = c.T;
  const int64_t qw = int64_t{c.hq} * c.dk, kw = int64_t{c.nk} * c.dk, vw = int64_t{c.hkv} * c.dv;
  const int64_t hout = std::max(c.hq, c.hkv);
  std::string err;
  // q, k and v: three tensors, or views into one fused (B, T, qw + kw + vw) projection.
  Tensor fused, tq, tk, tv, decay, beta, past, out, state, ref_out, ref_state;
  bool ok = true;
  if (c.fused) {
    ok = fused.create(c.act, {B, T, qw + kw + vw}, &err);
  } else {
    ok = tq.create(c.act, {B, T, qw}, &err) && tk.create(c.act, {B, T, kw}, &err) &&
         tv.create(c.act, {B, T, vw}, &err);
  }
  ok = ok && decay.create(c.act, {B, T, c.decay_per_key ? int64_t{c.hkv} * c.dk : c.hkv}, &err) &&
       beta.create(c.act, {B, T, c.beta_shared ? 1 : c.hkv}, &err) &&
       past.create(c.state, {B, c.hkv, c.dk, c.dv}, &err) &&
       out.create(c.act, {B, T, hout * c.dv}, &err) &&
       state.create(c.state, {B, c.hkv, c.dk, c.dv}, &err) &&
       ref_out.create(c.act, {B, T, hout * c.dv}, &err) &&
       ref_state.create(c.state, {B, c.hkv, c.dk, c.dv}, &err);
  if (!ok) return fail_msg(name, err);

  auto qkv_views = [&](bool device) {
    std::vector<linattn_tensor> v;
    if (c.fused) {
      linattn_tensor base = device ? fused.view() : fused.host_view();
      const int64_t w = qw + kw + vw;
      v.push_back(subview(base, 0, {B, T, qw}, {T * w, w, 1}));
      v.push_back(subview(base, qw, {B, T, kw}, {T * w, w, 1}));
      v.push_back(subview(base, qw + kw, {B, T, vw}, {T * w, w, 1}));
    } else {
      v.push_back(device ? tq.view() : tq.host_view());
      v.push_back(device ? tk.view() : tk.host_view());
      v.push_back(device ? tv.view() : tv.host_view());
    }
    return v;
  };
  std::vector<linattn_tensor> host_qkv = qkv_views(false);
  auto normal = [&] { return rng.normal(); };
  for (const linattn_tensor& t : host_qkv) fill_view(t, normal);
  l2_normalise_heads(host_qkv[0], c.dk);
  l2_normalise_heads(host_qkv[1], c.dk);
  decay.fill_with([&] { return -std::log1p(std::exp(-(rng.normal() + 3.0))); });  // logsigmoid
  beta.fill_with([&] { return 1.0 / (1.0 + std::exp(-rng.normal())); });
  past.fill_with([&] { return 0.5 * rng.normal(); });
  out.fill(NAN);
  state.fill(NAN);
  ref_out.fill(NAN);
  ref_state.fill(NAN);

  for (Tensor* t : {&fused, &tq, &tk, &tv, &decay, &beta, &past, &out, &state})
    if (!t->stage(dev.memory, &err)) return fail_msg(name, err);

  auto make_args = [&](bool device, const std::vector<linattn_tensor>& qkv, Tensor& o,
                       Tensor& s) {
    LinearAttentionArgs a = default_linear_attention_args();
    a.q_num_heads = c.hq;
    a.kv_num_heads = c.hkv;
    linattn_update_rule_from_string(c.rule.c_str(), &a.update_rule);
    a.query = qkv[0];
    a.key = qkv[1];
    a.value = qkv[2];
    a.past_state = c.past ? (device ? past.view() : past.host_view()) : absent();
    a.decay = device ? decay.view() : decay.host_view();
    a.beta = device ? beta.view() : beta.host_view();
    a.output = device ? o.view() : o.host_view();
    a.present_state = device ? s.view() : s.host_view();
    return a;
  };
  Status s = linear_attention(ctx, make_args(true, qkv_views(true), out, state));
  if (s.ok() && !device_synchronize(&err)) s = Status(LINATTN_ERROR_DEVICE, err);
  if (s.ok() && (!out.download(&err) || !state.download(&err)))
    s = Status(LINATTN_ERROR_DEVICE, err);
  if (!s.ok()) return fail_msg(name, s.to_string());
  s = linear_attention(oracle, make_args(false, host_qkv, ref_out, ref_state));
  if (!s.ok()) return fail_msg(name + " (oracle)", s.to_string());
  const double tol = tol_override > 0 ? tol_override : tolerance_for(c.act, c.state);
  const double e_out = relative_error(out.host_view(), ref_out.host_view());
  const double e_state = relative_error(state.host_view(), ref_state.host_view());
  return report(name, e_out, e_state, tol);
}

std::string describe(const ConvCase& c) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "conv B=%d C=%d L=%d k=%d %s %s%s%s %s/%s", c.B, c.C, c.L, c.k,
                c.silu ? "silu" : "none", c.channels_last ? "BLC" : "BCL", c.bias ? " bias" : "",
                c.past ? " past" : "", short_dtype_name(c.act), short_dtype_name(c.state));
  return buf;
}

bool verify_conv(const ConvCase& c, const DeviceChoice& dev, Context& ctx, Context& oracle,
                 Random& rng, double tol_override) {
  const std::string name = describe(c);
  std::string err;
  const std::vector<int64_t> xshape =
      c.channels_last ? std::vector<int64_t>{c.B, c.L, c.C} : std::vector<int64_t>{c.B, c.C, c.L};
  Tensor x, w, bias, past, out, state, ref_out, ref_state;
  if (!x.create(c.act, xshape, &err) || !w.create(c.act, {c.C, 1, c.k}, &err) ||
      !bias.create(c.act, {c.C}, &err) || !past.create(c.state, {c.B, c.C, c.k - 1}, &err) ||
      !out.create(c.act, xshape, &err) || !state.create(c.state, {c.B, c.C, c.k - 1}, &err) ||
      !ref_out.create(c.act, xshape, &err) ||
      !ref_state.create(c.state, {c.B, c.C, c.k - 1}, &err))
    return fail_msg(name, err);
  x.fill_with([&] { return rng.normal(); });
  w.fill_with([&] { return rng.uniform(-1, 1) / std::sqrt(double(c.k)); });
  bias.fill_with([&] { return 0.1 * rng.normal(); });
  past.fill_with([&] { return rng.normal(); });
  for (Tensor* t : {&out, &state, &ref_out, &ref_state}) t->fill(NAN);
  for (Tensor* t : {&x, &w, &bias, &past, &out, &state})
    if (!t->stage(dev.memory, &err)) return fail_msg(name, err);
  auto make_args = [&](bool device, Tensor& o, Tensor& s) {
    CausalConvArgs a = default_causal_conv_args();
    a.activation = c.silu ? LINATTN_ACTIVATION_SILU : LINATTN_ACTIVATION_NONE;
    a.channels_last = c.channels_last;
    a.input = device ? x.view() : x.host_view();
    a.weight = device ? w.view() : w.host_view();
    a.bias = c.bias ? (device ? bias.view() : bias.host_view()) : absent();
    a.past_state = c.past ? (device ? past.view() : past.host_view()) : absent();
    a.output = device ? o.view() : o.host_view();
    a.present_state = device ? s.view() : s.host_view();
    return a;
  };
  Status s = causal_conv(ctx, make_args(true, out, state));
  if (s.ok() && !device_synchronize(&err)) s = Status(LINATTN_ERROR_DEVICE, err);
  if (s.ok() && (!out.download(&err) || !state.download(&err)))
    s = Status(LINATTN_ERROR_DEVICE, err);
  if (!s.ok()) return fail_msg(name, s.to_string());
  s = causal_conv(oracle, make_args(false, ref_out, ref_state));
  if (!s.ok()) return fail_msg(name + " (oracle)", s.to_string());
  const double tol = tol_override > 0 ? tol_override : tolerance_for(c.act, c.state);
  const double e_out = relative_error(out.host_view(), ref_out.host_view());
  const double e_state = relative_error(state.host_view(), ref_state.host_view());
  return report(name, e_out, e_state, tol);
}

// Marks the run as a single custom case when any shape option is given.
Option custom(Option o, bool* single) {
  auto set = o.set;
  o.set = [set, single](const std::string& v) {
    *single = true;
    return set(v);
  };
  return o;
}

CommandSpec make_spec(VerifyOptions* o) {
  CommandSpec s;
  s.usage = "linattn verify [options]";
  s.description =
      "Runs random cases on the chosen device and compares outputs and present states with the\n"
      "float64 oracle (the reference backend) on the same inputs. Without case options, a\n"
      "built-in sweep of 27 cases (update rules, GQA / inverse GQA / key sharing, per-key decay,\n"
      "shared beta, fused q/k/v strides, lengths around chunk boundaries, f32/f16/bf16\n"
      "activations and states, causal conv variants). Any case option runs that one case.\n"
      "Prints the relative error (Frobenius) of each; exit status 1 when any exceeds its\n"
      "tolerance or fails.";
  AttentionCase& a = o->la;
  ConvCase& c = o->conv;
  bool* one = &o->single;
  s.options = {
      choice_option("--device", {"cpu", "cuda", "auto"}, "backend to verify (default cpu)",
                    &o->device),
      int_option("--threads", "N", "CPU threads (default 0 = all)", &o->threads, 0),
      int64_option("--seed", "N", "random seed (default 1)",
                   &o->seed, 0),
      float_option("--tolerance", "X", "relative error bound (default by dtype)", &o->tolerance),
      custom(choice_option("--op", {"linear-attention", "causal-conv"},
                           "the operator of the single case", &o->op), one),
      custom(choice_option("--rule", {"linear", "gated", "delta", "gated_delta"},
                           "update rule", &a.rule), one),
      custom(int_option("--batch", "N", "batch size", &a.B, 1), one),
      custom(int_option("--seq-len", "N", "tokens (T, or L for the conv)", &a.T, 0), one),
      custom(int_option("--q-heads", "N", "query heads H_q", &a.hq, 1), one),
      custom(int_option("--key-heads", "N", "key heads n_k", &a.nk, 1), one),
      custom(int_option("--kv-heads", "N", "value heads H_kv", &a.hkv, 1), one),
      custom(int_option("--dk", "N", "key head size", &a.dk, 1), one),
      custom(int_option("--dv", "N", "value head size", &a.dv, 1), one),
      custom(dtype_option("--dtype", "activations dtype", &a.act), one),
      custom(dtype_option("--state-dtype", "state dtype", &a.state), one),
      custom(choice_option("--decay", {"per-head", "per-key"}, "decay shape", &o->decay), one),
      custom(choice_option("--beta", {"per-head", "shared"}, "beta shape", &o->beta), one),
      custom(flag_option("--no-past", "no past_state", &o->no_past), one),
      custom(flag_option("--fused", "slice q/k/v out of one fused projection", &a.fused), one),
      custom(int_option("--channels", "N", "conv channels", &c.C, 1), one),
      custom(int_option("--width", "N", "conv width k", &c.k, 1), one),
      custom(choice_option("--activation", {"none", "silu", "swish"}, "conv activation",
                           &o->activation), one),
      custom(flag_option("--channels-first", "conv input (B, C, L) instead of (B, L, C)",
                         &o->channels_first), one),
      custom(flag_option("--no-bias", "conv without bias", &o->no_bias), one),
  };
  return s;
}

}  // namespace

int verify_main(int argc, char** argv, int first) {
  VerifyOptions o;
  CommandSpec spec = make_spec(&o);
  switch (parse_command(spec, argc, argv, first)) {
    case ParseResult::kHelp: return kExitOk;
    case ParseResult::kError: return kExitUsage;
    case ParseResult::kOk: break;
  }
  DeviceChoice dev;
  std::string err;
  if (!resolve_device(o.device, &dev, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return kExitFailure;
  }
  Context ctx, oracle;
  if (!open_context(dev.backend, o.threads, &ctx) ||
      !open_context(LINATTN_BACKEND_REFERENCE, 1, &oracle))
    return kExitFailure;

  std::vector<AttentionCase> la_cases;
  std::vector<ConvCase> conv_cases;
  if (!o.single) {
    la_cases = attention_sweep();
    conv_cases = conv_sweep();
  } else if (o.op == "linear-attention") {
    o.la.decay_per_key = o.decay == "per-key";
    o.la.beta_shared = o.beta == "shared";
    o.la.past = !o.no_past;
    la_cases.push_back(o.la);
  } else {
    ConvCase c = o.conv;
    c.B = o.la.B;
    c.L = o.la.T;
    c.act = o.la.act;
    c.state = o.la.state;
    c.silu = o.activation != "none";
    c.channels_last = !o.channels_first;
    c.bias = !o.no_bias;
    c.past = !o.no_past;
    conv_cases.push_back(c);
  }
  std::printf("linattn verify: device %s, %zu cases, oracle = reference backend (float64)\n",
              dev.name, la_cases.size() + conv_cases.size());
  Random rng(static_cast<uint64_t>(o.seed));
  int passed = 0, failed = 0;
  for (const AttentionCase& c : la_cases)
    (verify_attention(c, dev, ctx, oracle, rng, o.tolerance) ? passed : failed)++;
  for (const ConvCase& c : conv_cases)
    (verify_conv(c, dev, ctx, oracle, rng, o.tolerance) ? passed : failed)++;
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? kExitOk : kExitFailure;
}

}  // namespace linattn::tool
