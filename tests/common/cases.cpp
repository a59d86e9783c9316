#include "common/cases.hpp"

#include <cmath>
#include <vector>

namespace linattn::test {

const char* decay_kind_name(DecayKind k) {
  switch (k) {
    case DecayKind::kNone: return "nodecay";
    case DecayKind::kPerHead: return "decayhead";
    case DecayKind::kPerKeyDim: return "decaykey";
  }
  return "?";
}

const char* beta_kind_name(BetaKind k) {
  switch (k) {
    case BetaKind::kNone: return "nobeta";
    case BetaKind::kPerHead: return "betahead";
    case BetaKind::kShared: return "betashared";
  }
  return "?";
}

const char* rule_short_name(linattn_update_rule r) {
  switch (r) {
    case LINATTN_RULE_LINEAR: return "linear";
    case LINATTN_RULE_GATED: return "gated";
    case LINATTN_RULE_DELTA: return "delta";
    case LINATTN_RULE_GATED_DELTA: return "gated_delta";
  }
  return "?";
}

std::string LinearAttentionCase::name() const {
  std::string s = rule_short_name(rule);
  s += "_B" + std::to_string(B) + "_T" + std::to_string(T) + "_q" + std::to_string(Hq) + "k" +
       std::to_string(Hk) + "v" + std::to_string(Hkv) + "_dk" + std::to_string(dk) + "dv" +
       std::to_string(dv) + "_" + decay_kind_name(decay) + "_" + beta_kind_name(beta) + "_" +
       dtype_short_name(act_dtype) + "_state" + dtype_short_name(state_dtype);
  if (strided) s += "_strided";
  if (!has_past) s += "_nopast";
  return s;
}

std::string CausalConvCase::name() const {
  std::string s = "B" + std::to_string(B) + "_C" + std::to_string(C) + "_L" + std::to_string(L) +
                  "_k" + std::to_string(K);
  s += bias ? "_bias" : "_nobias";
  s += has_past ? "_past" : "_nopast";
  s += silu ? "_silu" : "_none";
  s += channels_last ? "_clast" : "_cfirst";
  s += std::string("_") + dtype_short_name(act_dtype) + "_state" + dtype_short_name(state_dtype);
  if (strided) s += "_strided";
  return s;
}

void PrintTo(const LinearAttentionCase& c, std::ostream* os) { *os << c.name(); }
void PrintTo(const CausalConvCase& c, std::ostream* os) { *os << c.name(); }

namespace {

double logsigmoid(double x) { return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Fills (B, T, H*D) with N(0,1) per element; `normalise` scales each head vector to unit L2
// norm, otherwise the vector is scaled by 1/sqrt(D) (unit norm on average).
void fill_heads(HostTensor& t, int64_t D, bool normalise, std::mt19937_64& rng) {
  std::normal_distribution<double> n01;
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (double& x : v) x = n01(rng);
  for (size_t h0 = 0; h0 < v.size(); h0 += static_cast<size_t>(D)) {
    double norm = 0;
    for (int64_t i = 0; i < D; ++i) norm += v[h0 + i] * v[h0 + i];
    const double s = normalise ? 1.0 / std::sqrt(norm > 0 ? norm : 1.0) : 1.0 / std::sqrt(double(D));
    for (int64_t i = 0; i < D; ++i) v[h0 + i] *= s;
  }
  t.set_values([&](int64_t e) { return v[e]; });
}

void fill_normal(HostTensor& t, double mean, double stddev, std::mt19937_64& rng) {
  std::normal_distribution<double> n(mean, stddev);
  t.set_values([&](int64_t) { return n(rng); });
}

}  // namespace

LinearAttentionInputs make_inputs(const LinearAttentionCase& c) {
  std::mt19937_64 rng(c.seed * 0x9e3779b97f4a7c15ull + 12345);
  std::normal_distribution<double> n01;
  LinearAttentionInputs in;
  const linattn_dtype a = c.act_dtype;
  in.query = HostTensor(a, {c.B, c.T, int64_t{c.Hq} * c.dk}, c.strided);
  in.key = HostTensor(a, {c.B, c.T, int64_t{c.Hk} * c.dk}, c.strided);
  in.value = HostTensor(a, {c.B, c.T, int64_t{c.Hkv} * c.dv}, c.strided);
  for (HostTensor* t : {&in.query, &in.key, &in.value}) t->poison();  // padding stays NaN
  fill_heads(in.query, c.dk, c.rule_delta(), rng);
  fill_heads(in.key, c.dk, c.rule_delta(), rng);
  fill_normal(in.value, 0.0, 1.0, rng);
  if (c.has_past) {
    in.past_state = HostTensor(c.state_dtype, {c.B, c.Hkv, c.dk, c.dv}, c.strided);
    in.past_state.poison();
    fill_normal(in.past_state, 0.0, 0.1, rng);
  }
  if (c.decay != DecayKind::kNone) {
    const int64_t w = c.decay == DecayKind::kPerHead ? c.Hkv : int64_t{c.Hkv} * c.dk;
    in.decay = HostTensor(a, {c.B, c.T, w}, c.strided);
    in.decay.poison();
    in.decay.set_values([&](int64_t) { return logsigmoid(n01(rng) + 3.0); });
  }
  if (c.beta != BetaKind::kNone) {
    const int64_t w = c.beta == BetaKind::kPerHead ? c.Hkv : 1;
    in.beta = HostTensor(a, {c.B, c.T, w}, c.strided);
    in.beta.poison();
    in.beta.set_values([&](int64_t) { return sigmoid(n01(rng)); });
  }
  return in;
}

CausalConvInputs make_inputs(const CausalConvCase& c) {
  std::mt19937_64 rng(c.seed * 0x9e3779b97f4a7c15ull + 777);
  CausalConvInputs in;
  const linattn_dtype a = c.act_dtype;
  if (c.channels_last) {
    in.input = HostTensor(a, {c.B, c.L, c.C}, c.strided);
  } else {
    in.input = HostTensor(a, {c.B, c.C, c.L}, c.strided);
  }
  in.input.poison();
  fill_normal(in.input, 0.0, 1.0, rng);
  in.weight = HostTensor(a, {c.C, 1, c.K}, c.strided);
  in.weight.poison();
  fill_normal(in.weight, 0.0, 1.0 / std::sqrt(double(c.K)), rng);
  if (c.bias) {
    in.bias = HostTensor(a, {c.C}, c.strided);
    fill_normal(in.bias, 0.0, 0.5, rng);
  }
  if (c.has_past) {
    in.past_state = HostTensor(c.state_dtype, {c.B, c.C, c.K - 1}, c.strided);
    in.past_state.poison();
    fill_normal(in.past_state, 0.0, 1.0, rng);
  }
  return in;
}

LinearAttentionOutputs make_outputs(const LinearAttentionCase& c, linattn_dtype act,
                                    linattn_dtype state, bool strided) {
  LinearAttentionOutputs out;
  out.output = HostTensor(act, {c.B, c.T, int64_t{c.Hout()} * c.dv}, strided);
  out.present_state = HostTensor(state, {c.B, c.Hkv, c.dk, c.dv}, strided);
  out.output.poison();
  out.present_state.poison();
  return out;
}

CausalConvOutputs make_outputs(const CausalConvCase& c, linattn_dtype act, linattn_dtype state,
                               bool strided) {
  CausalConvOutputs out;
  if (c.channels_last) {
    out.output = HostTensor(act, {c.B, c.L, c.C}, strided);
  } else {
    out.output = HostTensor(act, {c.B, c.C, c.L}, strided);
  }
  out.present_state = HostTensor(state, {c.B, c.C, c.K - 1}, strided);
  out.output.poison();
  out.present_state.poison();
  return out;
}

LinearAttentionInputs to_float64(const LinearAttentionInputs& in) {
  return {in.query.converted(LINATTN_FLOAT64), in.key.converted(LINATTN_FLOAT64),
          in.value.converted(LINATTN_FLOAT64), in.past_state.converted(LINATTN_FLOAT64),
          in.decay.converted(LINATTN_FLOAT64), in.beta.converted(LINATTN_FLOAT64)};
}

CausalConvInputs to_float64(const CausalConvInputs& in) {
  return {in.input.converted(LINATTN_FLOAT64), in.weight.converted(LINATTN_FLOAT64),
          in.bias.converted(LINATTN_FLOAT64), in.past_state.converted(LINATTN_FLOAT64)};
}

linattn_linear_attention_args make_args(const LinearAttentionCase& c,
                                        const LinearAttentionInputs& in,
                                        const LinearAttentionOutputs& out) {
  linattn_linear_attention_args a{};
  a.q_num_heads = c.Hq;
  a.kv_num_heads = c.Hkv;
  a.update_rule = c.rule;
  a.scale = c.scale;
  a.chunk_size = 0;
  a.strict = 0;
  a.query = in.query.view();
  a.key = in.key.view();
  a.value = in.value.view();
  a.past_state = in.past_state.view();
  a.decay = in.decay.view();
  a.beta = in.beta.view();
  a.output = out.output.view();
  a.present_state = out.present_state.view();
  return a;
}

linattn_causal_conv_args make_args(const CausalConvCase& c, const CausalConvInputs& in,
                                   const CausalConvOutputs& out) {
  linattn_causal_conv_args a{};
  a.activation = c.silu ? LINATTN_ACTIVATION_SILU : LINATTN_ACTIVATION_NONE;
  a.channels_last = c.channels_last ? 1 : 0;
  a.input = in.input.view();
  a.weight = in.weight.view();
  a.bias = in.bias.view();
  a.past_state = in.past_state.view();
  a.output = out.output.view();
  a.present_state = out.present_state.view();
  return a;
}

}  // namespace linattn::test
