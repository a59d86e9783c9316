// `linattn run`: the main job. A Qwen3.5-shaped GatedDeltaNet layer on the chosen device:
//   x (B, L, C) -> CausalConvWithState (channels last, silu) -> q | k | v channel slices
//   -> L2-normalised q and k (on the host, outside the timed regions) -> LinearAttention
//   (inverse GQA), then decode steps (L = 1) carrying both the conv state and the recurrent
//   state in place. Outputs are checked against the oracle (the reference backend): the conv in
//   full, the attention on the first value heads' slice (their q/k/v sliced by strides as their
//   own call) unless the full problem is cheap. Prints relative errors, PASS/FAIL, tokens/s.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cli_options.hpp"
#include "commands.hpp"
#include "run_serving.hpp"
#include "tensor_data.hpp"
#include "tolerance.hpp"

namespace linattn::tool {
namespace {

struct RunOptions {
  std::string device = "cpu";
  std::string preset = "qwen3.5";
  int batch = 1, prompt_len = 4096, decode_steps = 64;
  int q_heads = -1, kv_heads = -1, dk = -1, dv = -1, conv_width = 4;  // -1: not given
  linattn_dtype dtype = LINATTN_FLOAT32, state_dtype = LINATTN_FLOAT32;
  std::string rule = "gated_delta";
  int threads = 0, warmup = 1, repeat = 3, oracle_heads = 0;
  int64_t seed = 1;
  double tolerance = 0;
  std::string scenario = "dense";
  ServingScenarioOptions serving;  // --scenario serving
};

CommandSpec make_spec(RunOptions* o) {
  CommandSpec s;
  s.usage = "linattn run [options]";
  s.description =
      "Runs a Qwen3.5-shaped GatedDeltaNet layer: random x (B, L, C) -> CausalConvWithState\n"
      "(channels last, silu, width 4) -> split into q (H_q*d_k), k (H_q*d_k), v (H_kv*d_v)\n"
      "-> L2-normalised q and k -> LinearAttention (gated_delta, inverse GQA), then decode\n"
      "steps carrying the conv state and the recurrent state. C = 2*H_q*d_k + H_kv*d_v.\n"
      "Checks against the oracle (the float64 reference backend) and prints relative errors\n"
      "and tokens/s for prefill (conv, attention, combined) and decode. Exit status 1 when a\n"
      "check fails or a call errors.";
  s.options = {
      choice_option("--scenario", {"dense", "serving", "serving-overhead"},
                    "dense (default): the layer above; serving: continuous batching over a "
                    "state pool (varlen prefill chunks, decodes, speculative steps, PAD "
                    "entries) checked call by call against the oracle; serving-overhead: CPU "
                    "timing of pooled decode (--batch, default 32) and varlen prefill "
                    "(--batch/8 sequences of --prompt-len) against the dense calls",
                    &o->scenario),
      choice_option("--device", {"cpu", "cuda", "auto"},
                    "backend (default cpu; auto = cuda when available)", &o->device),
      choice_option("--preset", {"qwen3.5", "tp2", "tp4", "tp8", "large"},
                    "head counts H_q/H_kv: qwen3.5 16/32 (default), tp2 8/16, tp4 4/8, "
                    "tp8 2/8, large 16/64",
                    &o->preset),
      int_option("--batch", "N", "batch size B (default 1)", &o->batch, 1),
      int_option("--prompt-len", "N", "prompt tokens L (default 4096)", &o->prompt_len, 0),
      int_option("--decode-steps", "N", "decode steps after the prompt (default 64)",
                 &o->decode_steps, 0),
      int_option("--q-heads", "N", "query/key heads H_q = n_k (overrides the preset)",
                 &o->q_heads, 1),
      int_option("--kv-heads", "N", "value heads H_kv (overrides the preset)", &o->kv_heads, 1),
      {"--head-dim", "N", "d_k = d_v (default 128)",
       [o](const std::string& v) {
         std::string e = int_option("", "", "", &o->dk, 1).set(v);
         if (e.empty()) o->dv = o->dk;
         return e;
       }},
      int_option("--dk", "N", "key head size d_k", &o->dk, 1),
      int_option("--dv", "N", "value head size d_v", &o->dv, 1),
      int_option("--conv-width", "N", "conv kernel width k (default 4)", &o->conv_width, 1),
      dtype_option("--dtype", "activations dtype (default f32)", &o->dtype),
      dtype_option("--state-dtype", "conv and recurrent state dtype (default f32)",
                   &o->state_dtype),
      choice_option("--rule", {"linear", "gated", "delta", "gated_delta"},
                    "update rule (default gated_delta)", &o->rule),
      int_option("--threads", "N", "CPU threads (default 0 = all)", &o->threads, 0),
      int64_option("--seed", "N", "random seed (default 1)", &o->seed, 0),
      int_option("--warmup", "N", "untimed prefill runs before timing (default 1)", &o->warmup,
                 0),
      int_option("--repeat", "N", "timed prefill runs; the median is reported (default 3)",
                 &o->repeat, 1),
      int_option("--oracle-heads", "N",
                 "value heads the oracle checks (default 0 = all when cheap, else 2)",
                 &o->oracle_heads, 0),
      float_option("--tolerance", "X", "relative error bound (default by dtype)",
                   &o->tolerance),
      int_option("--pool-seqs", "N", "serving: sequences the state pool holds (default 16)",
                 &o->serving.pool_seqs, 1),
      int_option("--steps", "N", "serving: scheduler steps (default 64)", &o->serving.steps, 1),
      float_option("--arrival-rate", "X", "serving: mean new requests per step (default 0.5)",
                   &o->serving.arrival_rate),
      int_option("--prompt-max", "N", "serving: longest prompt (default 300)",
                 &o->serving.prompt_max, 1),
      int_option("--gen-max", "N", "serving: most generated tokens (default 24)",
                 &o->serving.gen_max, 1),
      int_option("--prefill-chunk", "N", "serving: prefill tokens per sequence per step "
                 "(default 128)", &o->serving.prefill_chunk, 1),
      int_option("--spec-len", "N", "serving: draft tokens per speculative step (default 0 = "
                 "plain decode)", &o->serving.spec_len, 0),
  };
  return s;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// The checks of one run: each line is printed when added; all must pass.
class Checks {
 public:
  explicit Checks(double tol) : tol_(tol) {}
  void add(const std::string& what, double err) {
    const bool ok = std::isfinite(err) && err <= tol_;
    failed_ += ok ? 0 : 1;
    std::printf("  %-40s rel err %.3e  %s (tol %.0e)\n", what.c_str(), err, ok ? "PASS" : "FAIL",
                tol_);
  }
  bool ok() const { return failed_ == 0; }

 private:
  double tol_;
  int failed_ = 0;
};

// Runs a call, and on the device waits for it so the wall-clock time covers the work.
template <class F>
Status timed(F&& call, double* secs) {
  std::string err;
  if (!device_synchronize(&err)) return Status(LINATTN_ERROR_DEVICE, err);
  const auto t0 = std::chrono::steady_clock::now();
  Status s = call();
  if (s.ok() && !device_synchronize(&err)) s = Status(LINATTN_ERROR_DEVICE, err);
  *secs = seconds_since(t0);
  return s;
}

bool check_status(const Status& s, const char* what) {
  if (s.ok()) return true;
  std::fprintf(stderr, "error: %s: %s\n", what, s.to_string().c_str());
  return false;
}

bool check_io(bool ok, const std::string& err) {
  if (!ok) std::fprintf(stderr, "error: %s\n", err.c_str());
  return ok;
}

class Layer {
 public:
  Layer(const RunOptions& o, const DeviceChoice& dev, Context& ctx, Context& oracle)
      : o_(o), dev_(dev), ctx_(ctx), oracle_(oracle), rng_(static_cast<uint64_t>(o.seed)) {
    B_ = o.batch, L_ = o.prompt_len, hq_ = o.q_heads, hkv_ = o.kv_heads, dk_ = o.dk, dv_ = o.dv;
    K_ = o.conv_width;
    C_ = 2 * hq_ * dk_ + hkv_ * dv_;
    hout_ = std::max(hq_, hkv_);
    linattn_update_rule_from_string(o.rule.c_str(), &rule_);
  }

  int run() {
    if (!choose_oracle_slice()) return kExitUsage;
    print_header();
    if (!allocate()) return kExitFailure;
    Checks checks(o_.tolerance > 0 ? o_.tolerance : tolerance_for(o_.dtype, o_.state_dtype));
    std::printf("check against the oracle (reference backend, float64; attention on value heads "
                "0..%lld of %lld):\n",
                static_cast<long long>(m_ - 1), static_cast<long long>(hkv_));
    double t_conv = 0, t_attn = 0;
    if (!prefill(checks, &t_conv, &t_attn)) return kExitFailure;
    double t_decode = 0;
    if (!decode(checks, &t_decode)) return kExitFailure;

    const double tokens = static_cast<double>(B_) * L_;
    std::printf("throughput (prefill: median of %d after %d warm-up):\n", o_.repeat, o_.warmup);
    auto line = [](const char* what, double secs, double toks) {
      std::printf("  %-26s %10.3f ms  %14.1f tokens/s\n", what, secs * 1e3,
                  secs > 0 ? toks / secs : 0.0);
    };
    line("prefill conv", t_conv, tokens);
    line("prefill attention", t_attn, tokens);
    line("prefill conv + attention", t_conv + t_attn, tokens);
    if (o_.decode_steps > 0) {
      line("decode (all steps)", t_decode, static_cast<double>(B_) * o_.decode_steps);
      std::printf("  %-26s %10.1f us per step (conv + attention, B=%lld tokens)\n",
                  "decode step", t_decode / o_.decode_steps * 1e6, static_cast<long long>(B_));
    }
    std::printf("RESULT: %s\n", checks.ok() ? "PASS" : "FAIL");
    return checks.ok() ? kExitOk : kExitFailure;
  }

 private:
  // The oracle checks value heads [0, m): m must map onto whole query and key heads, i.e. be a
  // multiple of H_kv / gcd(H_kv, H_q) (H_q key heads as in the model).
  bool choose_oracle_slice() {
    const int64_t unit = hkv_ / std::gcd(hkv_, hq_);
    const double full_cost = double(B_) * (L_ + o_.decode_steps) * hkv_ * dk_ * dv_;
    int64_t want = o_.oracle_heads > 0 ? o_.oracle_heads : (full_cost <= 3e8 ? hkv_ : 2);
    m_ = std::min(hkv_, ((want + unit - 1) / unit) * unit);
    mq_ = m_ * hq_ / hkv_;
    mout_ = std::max(m_, mq_);
    return true;
  }

  void print_header() {
    std::printf(
        "linattn run: device %s, preset %s: B=%lld L=%lld decode=%d, H_q=n_k=%lld H_kv=%lld "
        "d_k=%lld d_v=%lld, conv C=%lld k=%lld silu, rule %s, activations %s, state %s\n",
        dev_.name, o_.preset.c_str(), (long long)B_, (long long)L_, o_.decode_steps,
        (long long)hq_, (long long)hkv_, (long long)dk_, (long long)dv_, (long long)C_,
        (long long)K_, o_.rule.c_str(), short_dtype_name(o_.dtype),
        short_dtype_name(o_.state_dtype));
  }

  bool allocate() {
    std::string e;
    const auto act = o_.dtype, st = o_.state_dtype;
    bool ok = x_.create(act, {B_, L_, C_}, &e) && w_.create(act, {C_, 1, K_}, &e) &&
              conv_out_.create(act, {B_, L_, C_}, &e) &&
              conv_state_.create(st, {B_, C_, K_ - 1}, &e) &&
              decay_.create(act, {B_, L_, hkv_}, &e) && beta_.create(act, {B_, L_, hkv_}, &e) &&
              out_.create(act, {B_, L_, hout_ * dv_}, &e) &&
              state_.create(st, {B_, hkv_, dk_, dv_}, &e) &&
              ref_conv_out_.create(act, {B_, L_, C_}, &e) &&
              ref_conv_state_.create(st, {B_, C_, K_ - 1}, &e) &&
              ref_out_.create(act, {B_, L_, mout_ * dv_}, &e) &&
              ref_state_.create(st, {B_, m_, dk_, dv_}, &e) &&
              // Decode-step tensors.
              x1_.create(act, {B_, 1, C_}, &e) && conv_out1_.create(act, {B_, 1, C_}, &e) &&
              decay1_.create(act, {B_, 1, hkv_}, &e) && beta1_.create(act, {B_, 1, hkv_}, &e) &&
              out1_.create(act, {B_, 1, hout_ * dv_}, &e) &&
              ref_conv_out1_.create(act, {B_, 1, C_}, &e) &&
              ref_out1_.create(act, {B_, 1, mout_ * dv_}, &e);
    if (!check_io(ok, e)) return false;
    x_.fill_with([&] { return rng_.normal(); });
    w_.fill_with([&] { return rng_.uniform(-1, 1) / std::sqrt(double(K_)); });
    fill_gates(decay_, beta_);
    for (Tensor* t : {&conv_out_, &conv_state_, &out_, &state_, &ref_conv_out_,
                      &ref_conv_state_, &ref_out_, &ref_state_, &conv_out1_, &out1_})
      t->fill(NAN);
    for (Tensor* t : {&x_, &w_, &conv_out_, &conv_state_, &decay_, &beta_, &out_, &state_, &x1_,
                      &conv_out1_, &decay1_, &beta1_, &out1_})
      if (!check_io(t->stage(dev_.memory, &e), e)) return false;
    return true;
  }

  // decay = logsigmoid(.) <= 0 (about -0.05 on average: a slow forgetting), beta = sigmoid(.).
  void fill_gates(Tensor& decay, Tensor& beta) {
    decay.fill_with([&] { return -std::log1p(std::exp(-(rng_.normal() + 3.0))); });
    beta.fill_with([&] { return 1.0 / (1.0 + std::exp(-rng_.normal())); });
  }

  CausalConvArgs conv_args(const linattn_tensor& x, const linattn_tensor& w,
                           const linattn_tensor& past, const linattn_tensor& out,
                           const linattn_tensor& present) {
    CausalConvArgs a = default_causal_conv_args();
    a.activation = LINATTN_ACTIVATION_SILU;
    a.channels_last = 1;
    a.input = x, a.weight = w, a.past_state = past, a.output = out, a.present_state = present;
    return a;
  }

  // q, k, v of value heads [0, heads) (all: heads = H_kv) as strided views of a conv output
  // (B, T, C) with the channel layout q | k | v.
  std::vector<linattn_tensor> qkv(const linattn_tensor& conv, int64_t heads) {
    const int64_t T = conv.shape[1], qh = heads * hq_ / hkv_;
    return {subview(conv, 0, {B_, T, qh * dk_}, {T * C_, C_, 1}),
            subview(conv, hq_ * dk_, {B_, T, qh * dk_}, {T * C_, C_, 1}),
            subview(conv, 2 * hq_ * dk_, {B_, T, heads * dv_}, {T * C_, C_, 1})};
  }

  LinearAttentionArgs attn_args(int64_t heads, const linattn_tensor& conv,
                                const linattn_tensor& decay, const linattn_tensor& beta,
                                const linattn_tensor& past, const linattn_tensor& out,
                                const linattn_tensor& present) {
    LinearAttentionArgs a = default_linear_attention_args();
    a.q_num_heads = static_cast<int32_t>(heads * hq_ / hkv_);
    a.kv_num_heads = static_cast<int32_t>(heads);
    a.update_rule = rule_;
    std::vector<linattn_tensor> v = qkv(conv, heads);
    a.query = v[0], a.key = v[1], a.value = v[2];
    const int64_t T = conv.shape[1];
    a.decay = subview(decay, 0, {B_, T, heads}, {T * hkv_, hkv_, 1});
    a.beta = subview(beta, 0, {B_, T, heads}, {T * hkv_, hkv_, 1});
    a.past_state = past, a.output = out, a.present_state = present;
    return a;
  }

  // Views of the first value heads of full-size results, to compare with the oracle's slice.
  linattn_tensor out_slice(Tensor& out) {
    const int64_t T = out.host.shape[1], w = hout_ * dv_;
    return subview(out.host_view(), 0, {B_, T, mout_ * dv_}, {T * w, w, 1});
  }
  linattn_tensor state_slice(Tensor& state) {
    const int64_t hs = dk_ * dv_;
    return subview(state.host_view(), 0, {B_, m_, dk_, dv_}, {hkv_ * hs, hs, dv_, 1});
  }

  // Host-side L2 normalisation of q and k inside a conv output (device copy refreshed).
  bool normalise_qk(Tensor& conv) {
    std::string e;
    if (!check_io(conv.download(&e), e)) return false;
    std::vector<linattn_tensor> v = qkv(conv.host_view(), hkv_);
    l2_normalise_heads(v[0], dk_);
    l2_normalise_heads(v[1], dk_);
    return check_io(conv.upload(&e), e);
  }

  bool prefill(Checks& checks, double* t_conv, double* t_attn) {
    std::string e;
    std::vector<double> tc, ta;
    CausalConvArgs ca = conv_args(x_.view(), w_.view(), absent(), conv_out_.view(),
                                  conv_state_.view());
    for (int i = 0; i < o_.warmup + o_.repeat; ++i) {
      double s = 0;
      if (!check_status(timed([&] { return causal_conv(ctx_, ca); }, &s), "prefill conv"))
        return false;
      if (i >= o_.warmup) tc.push_back(s);
    }
    *t_conv = median(tc);
    if (!check_io(conv_state_.download(&e), e) || !normalise_qk(conv_out_)) return false;

    LinearAttentionArgs la = attn_args(hkv_, conv_out_.view(), decay_.view(), beta_.view(),
                                       absent(), out_.view(), state_.view());
    for (int i = 0; i < o_.warmup + o_.repeat; ++i) {
      double s = 0;
      if (!check_status(timed([&] { return linear_attention(ctx_, la); }, &s),
                        "prefill attention"))
        return false;
      if (i >= o_.warmup) ta.push_back(s);
    }
    *t_attn = median(ta);
    if (!check_io(out_.download(&e) && state_.download(&e), e)) return false;

    // Oracle: the conv in full on the same x; the attention on the slice of value heads, fed
    // the device's (normalised) conv output so that each operator is checked on its own.
    Status s = causal_conv(oracle_, conv_args(x_.host_view(), w_.host_view(), absent(),
                                              ref_conv_out_.host_view(),
                                              ref_conv_state_.host_view()));
    if (!check_status(s, "oracle conv")) return false;
    // The device output was normalised in place; normalise the oracle's the same way.
    std::vector<linattn_tensor> rv = qkv(ref_conv_out_.host_view(), hkv_);
    l2_normalise_heads(rv[0], dk_);
    l2_normalise_heads(rv[1], dk_);
    checks.add("prefill conv output", relative_error(conv_out_.host_view(),
                                                     ref_conv_out_.host_view()));
    checks.add("prefill conv state", relative_error(conv_state_.host_view(),
                                                    ref_conv_state_.host_view()));
    s = linear_attention(oracle_, attn_args(m_, conv_out_.host_view(), decay_.host_view(),
                                            beta_.host_view(), absent(), ref_out_.host_view(),
                                            ref_state_.host_view()));
    if (!check_status(s, "oracle attention")) return false;
    checks.add("prefill attention output", relative_error(out_slice(out_), ref_out_.host_view()));
    checks.add("prefill attention state",
               relative_error(state_slice(state_), ref_state_.host_view()));
    return true;
  }

  bool decode(Checks& checks, double* t_decode) {
    std::string e;
    ErrorAccumulator conv_err, attn_err;
    *t_decode = 0;
    // Both states are updated in place (present_state aliases past_state).
    CausalConvArgs ca = conv_args(x1_.view(), w_.view(), conv_state_.view(), conv_out1_.view(),
                                  conv_state_.view());
    LinearAttentionArgs la = attn_args(hkv_, conv_out1_.view(), decay1_.view(), beta1_.view(),
                                       state_.view(), out1_.view(), state_.view());
    for (int step = 0; step < o_.decode_steps; ++step) {
      x1_.fill_with([&] { return rng_.normal(); });
      fill_gates(decay1_, beta1_);
      if (!check_io(x1_.upload(&e) && decay1_.upload(&e) && beta1_.upload(&e), e)) return false;
      double s1 = 0, s2 = 0;
      if (!check_status(timed([&] { return causal_conv(ctx_, ca); }, &s1), "decode conv") ||
          !normalise_qk(conv_out1_) ||
          !check_status(timed([&] { return linear_attention(ctx_, la); }, &s2),
                        "decode attention"))
        return false;
      *t_decode += s1 + s2;
      if (!check_io(out1_.download(&e), e)) return false;

      // The oracle carries its own states, from its own prefill.
      Status s = causal_conv(oracle_, conv_args(x1_.host_view(), w_.host_view(),
                                                ref_conv_state_.host_view(),
                                                ref_conv_out1_.host_view(),
                                                ref_conv_state_.host_view()));
      if (!check_status(s, "oracle decode conv")) return false;
      std::vector<linattn_tensor> rv = qkv(ref_conv_out1_.host_view(), hkv_);
      l2_normalise_heads(rv[0], dk_);
      l2_normalise_heads(rv[1], dk_);
      conv_err.add(conv_out1_.host_view(), ref_conv_out1_.host_view());
      s = linear_attention(oracle_, attn_args(m_, conv_out1_.host_view(), decay1_.host_view(),
                                              beta1_.host_view(), ref_state_.host_view(),
                                              ref_out1_.host_view(), ref_state_.host_view()));
      if (!check_status(s, "oracle decode attention")) return false;
      attn_err.add(out_slice(out1_), ref_out1_.host_view());
    }
    if (o_.decode_steps == 0) return true;
    if (!check_io(conv_state_.download(&e) && state_.download(&e), e)) return false;
    const std::string n = " (" + std::to_string(o_.decode_steps) + " steps)";
    checks.add("decode conv output" + n, conv_err.relative());
    checks.add("decode attention output" + n, attn_err.relative());
    checks.add("final conv state", relative_error(conv_state_.host_view(),
                                                  ref_conv_state_.host_view()));
    checks.add("final attention state",
               relative_error(state_slice(state_), ref_state_.host_view()));
    return true;
  }

  const RunOptions& o_;
  DeviceChoice dev_;
  Context& ctx_;
  Context& oracle_;
  Random rng_;
  linattn_update_rule rule_ = LINATTN_RULE_GATED_DELTA;
  int64_t B_, L_, hq_, hkv_, dk_, dv_, K_, C_, hout_;
  int64_t m_ = 0, mq_ = 0, mout_ = 0;  // the oracle's slice: value, query and output heads
  Tensor x_, w_, conv_out_, conv_state_, decay_, beta_, out_, state_;
  Tensor ref_conv_out_, ref_conv_state_, ref_out_, ref_state_;
  Tensor x1_, conv_out1_, decay1_, beta1_, out1_, ref_conv_out1_, ref_out1_;
};

}  // namespace

int run_main(int argc, char** argv, int first) {
  RunOptions o;
  CommandSpec spec = make_spec(&o);
  switch (parse_command(spec, argc, argv, first)) {
    case ParseResult::kHelp: return kExitOk;
    case ParseResult::kError: return kExitUsage;
    case ParseResult::kOk: break;
  }
  if (o.scenario == "serving" || o.scenario == "serving-overhead") {
    ServingScenarioOptions& so = o.serving;
    const bool overhead = o.scenario == "serving-overhead";
    if (overhead) {  // the reference shape unless heads are given
      so.q_heads = 16, so.kv_heads = 32, so.dk = so.dv = 128;
    }
    DeviceChoice dev;
    std::string err;
    if (!resolve_device(o.device, &dev, &err)) {
      std::fprintf(stderr, "error: %s\n", err.c_str());
      return kExitFailure;
    }
    so.backend = dev.backend;
    so.threads = o.threads;
    so.seed = o.seed;
    if (o.q_heads > 0) so.q_heads = o.q_heads;
    if (o.kv_heads > 0) so.kv_heads = o.kv_heads;
    if (o.dk > 0) so.dk = o.dk;
    if (o.dv > 0) so.dv = o.dv;
    if (o.tolerance > 0) so.tolerance = o.tolerance;
    so.prompt_max = std::max(so.prompt_max, so.prompt_min);
    so.gen_max = std::max(so.gen_max, so.gen_min);
    if (overhead) return run_serving_overhead(so, o.batch > 1 ? o.batch : 32, o.prompt_len, o.repeat);
    return run_serving_scenario(so);
  }
  if (o.dk < 0) o.dk = 128;
  if (o.dv < 0) o.dv = 128;
  struct Preset { const char* name; int hq, hkv; };
  static const Preset presets[] = {
      {"qwen3.5", 16, 32}, {"tp2", 8, 16}, {"tp4", 4, 8}, {"tp8", 2, 8}, {"large", 16, 64}};
  for (const Preset& p : presets)
    if (o.preset == p.name) {
      if (o.q_heads < 0) o.q_heads = p.hq;
      if (o.kv_heads < 0) o.kv_heads = p.hkv;
    }
  if (o.q_heads % o.kv_heads != 0 && o.kv_heads % o.q_heads != 0) {
    std::fprintf(stderr, "error: --q-heads %d and --kv-heads %d: one must divide the other\n",
                 o.q_heads, o.kv_heads);
    return kExitUsage;
  }
  DeviceChoice dev;
  std::string err;
  if (!resolve_device(o.device, &dev, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return kExitFailure;
  }
  Context ctx, oracle;
  if (!open_context(dev.backend, o.threads, &ctx) ||
      !open_context(LINATTN_BACKEND_REFERENCE, 0, &oracle))
    return kExitFailure;
  Layer layer(o, dev, ctx, oracle);
  return layer.run();
}

}  // namespace linattn::tool
