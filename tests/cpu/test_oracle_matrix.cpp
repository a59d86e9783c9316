// The CPU backend against the float64 oracle, through the public API, over the case matrix:
// update rule x head mapping x decay kind x beta kind x activation dtype x state dtype x length
// x strided views (plus past/no past, batch, head sizes including odd ones, explicit scale).
// Per rule, two families keep the run short while every value of every axis meets every rule:
//   A: head mapping x decay x beta x strided, full product (valid combinations only);
//   B: activation dtype x state dtype x length, full product;
// the remaining axes cycle through their values along each family.
// Also here: closed-form checks of the oracle itself, so it is not only trusted by agreement.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/oracle_runner.hpp"

namespace linattn::test {
namespace {

struct HeadMapping {
  int32_t Hq, Hk, Hkv;
};
// equal heads, standard GQA (H_q = 2 H_kv), inverse GQA (H_kv = 2 H_q, Qwen3.5-like),
// key sharing (n_k < H_kv).
const HeadMapping kMappings[] = {{2, 2, 2}, {4, 2, 2}, {2, 2, 4}, {4, 1, 4}};
const DecayKind kDecays[] = {DecayKind::kNone, DecayKind::kPerHead, DecayKind::kPerKeyDim};
const BetaKind kBetas[] = {BetaKind::kNone, BetaKind::kPerHead, BetaKind::kShared};
const linattn_dtype kDtypes[] = {LINATTN_FLOAT32, LINATTN_FLOAT16, LINATTN_BFLOAT16};
const int64_t kLengths[] = {0, 1, 2, 63, 64, 65, 127, 129, 300};
const linattn_update_rule kRules[] = {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED,
                                      LINATTN_RULE_DELTA, LINATTN_RULE_GATED_DELTA};
struct HeadDims {
  int32_t dk, dv;
};
const HeadDims kDims[] = {{16, 16}, {32, 32}, {16, 32}, {5, 7}, {32, 16}};

// Sets the first valid decay/beta pair at or after position `i` of the 3 x 3 grid.
void pick_valid_gating(LinearAttentionCase& c, int i) {
  for (int k = 0; k < 9; ++k) {
    const int j = (i + k) % 9;
    c.decay = kDecays[j % 3];
    c.beta = kBetas[j / 3];
    if (c.valid()) return;
  }
}

std::vector<LinearAttentionCase> build_matrix() {
  std::vector<LinearAttentionCase> cases;
  uint64_t seed = 1;
  for (linattn_update_rule rule : kRules) {
    int n = 0;  // counter that drives the cycling axes
    auto cycle = [&](LinearAttentionCase& c) {
      const HeadDims d = kDims[n % 5];
      c.dk = d.dk;
      c.dv = d.dv;
      c.has_past = (n % 7) != 3;  // mostly with a past state, regularly without
      c.B = 1 + (n % 2);
      c.scale = (n % 11 == 5) ? 0.37f : 0.f;
      c.seed = seed++;
      ++n;
    };
    // A: mapping x decay x beta x strided.
    for (const HeadMapping& m : kMappings)
      for (DecayKind dk : kDecays)
        for (BetaKind bk : kBetas)
          for (bool strided : {false, true}) {
            LinearAttentionCase c;
            c.rule = rule;
            c.Hq = m.Hq;
            c.Hk = m.Hk;
            c.Hkv = m.Hkv;
            c.decay = dk;
            c.beta = bk;
            if (!c.valid()) continue;
            c.strided = strided;
            c.act_dtype = kDtypes[n % 3];
            c.state_dtype = kDtypes[(n / 3) % 3];
            c.T = kLengths[n % 9];
            cycle(c);
            cases.push_back(c);
          }
    // B: act dtype x state dtype x length.
    for (linattn_dtype act : kDtypes)
      for (linattn_dtype state : kDtypes)
        for (int64_t T : kLengths) {
          LinearAttentionCase c;
          c.rule = rule;
          const HeadMapping m = kMappings[n % 4];
          c.Hq = m.Hq;
          c.Hk = m.Hk;
          c.Hkv = m.Hkv;
          pick_valid_gating(c, n);
          c.strided = (n % 2) == 1;
          c.act_dtype = act;
          c.state_dtype = state;
          c.T = T;
          cycle(c);
          cases.push_back(c);
        }
  }
  return cases;
}

class OracleMatrix : public ::testing::TestWithParam<LinearAttentionCase> {};

TEST_P(OracleMatrix, CpuMatchesOracle) {
  EXPECT_TRUE(passed(run_case(GetParam(), cpu_context())));
}

INSTANTIATE_TEST_SUITE_P(Cpu, OracleMatrix, ::testing::ValuesIn(build_matrix()),
                         [](const ::testing::TestParamInfo<LinearAttentionCase>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

// Every value of every axis appears with every rule.
TEST(OracleMatrixCoverage, EveryAxisValueMeetsEveryRule) {
  const std::vector<LinearAttentionCase> cases = build_matrix();
  for (linattn_update_rule rule : kRules) {
    auto any = [&](auto pred) {
      for (const LinearAttentionCase& c : cases)
        if (c.rule == rule && pred(c)) return true;
      return false;
    };
    const char* r = rule_short_name(rule);
    for (const HeadMapping& m : kMappings)
      EXPECT_TRUE(any([&](auto& c) { return c.Hq == m.Hq && c.Hk == m.Hk && c.Hkv == m.Hkv; }))
          << r;
    for (DecayKind d : kDecays) {
      const bool needed = rule == LINATTN_RULE_GATED || rule == LINATTN_RULE_GATED_DELTA;
      if (needed && d == DecayKind::kNone) continue;  // invalid call, not a numeric case
      EXPECT_TRUE(any([&](auto& c) { return c.decay == d; })) << r << " " << decay_kind_name(d);
    }
    for (BetaKind b : kBetas) {
      const bool needed = rule == LINATTN_RULE_DELTA || rule == LINATTN_RULE_GATED_DELTA;
      if (needed && b == BetaKind::kNone) continue;
      EXPECT_TRUE(any([&](auto& c) { return c.beta == b; })) << r << " " << beta_kind_name(b);
    }
    for (linattn_dtype t : kDtypes) {
      EXPECT_TRUE(any([&](auto& c) { return c.act_dtype == t; })) << r;
      EXPECT_TRUE(any([&](auto& c) { return c.state_dtype == t; })) << r;
    }
    for (int64_t T : kLengths) EXPECT_TRUE(any([&](auto& c) { return c.T == T; })) << r;
    for (const HeadDims& d : kDims)
      EXPECT_TRUE(any([&](auto& c) { return c.dk == d.dk && c.dv == d.dv; })) << r;
    for (bool b : {false, true}) {
      EXPECT_TRUE(any([&](auto& c) { return c.strided == b; })) << r;
      EXPECT_TRUE(any([&](auto& c) { return c.has_past == b; })) << r;
    }
  }
}

// --- The oracle against closed forms -------------------------------------------------------

// For linear and gated (per-head decay) rules the state has a closed form:
//   S_t = a_t S_0 + sum_{s<=t} (a_t / a_s) k_s v_s^T,  a_t = exp(g_1 + ... + g_t),
// and o_t = scale S_t^T q_t. Computed here directly, independently of the recurrence.
void check_closed_form(linattn_update_rule rule) {
  LinearAttentionCase c;
  c.rule = rule;
  c.B = 1;
  c.T = 9;
  c.Hq = c.Hk = c.Hkv = 1;
  c.dk = 3;
  c.dv = 2;
  c.decay = rule == LINATTN_RULE_GATED ? DecayKind::kPerHead : DecayKind::kNone;
  c.beta = BetaKind::kNone;
  c.act_dtype = LINATTN_FLOAT32;
  c.scale = 0.5f;  // exact in float, so the closed form below uses the same value
  const LinearAttentionInputs in = make_inputs(c);
  LinearAttentionOutputs ref;
  ASSERT_TRUE(run_oracle(c, in, &ref).ok());
  const std::vector<double> q = in.query.values(), k = in.key.values(), v = in.value.values(),
                            s0 = in.past_state.values();
  const std::vector<double> g = c.decay == DecayKind::kNone ? std::vector<double>(c.T, 0.0)
                                                            : in.decay.values();
  const std::vector<double> o = ref.output.values(), sT = ref.present_state.values();
  const double scale = 0.5;
  std::vector<double> cum(c.T + 1, 0.0);
  for (int t = 0; t < c.T; ++t) cum[t + 1] = cum[t] + g[t];
  for (int t = 0; t < c.T; ++t) {
    for (int j = 0; j < 2; ++j) {
      double acc = 0;
      for (int i = 0; i < 3; ++i) {
        double S = std::exp(cum[t + 1]) * s0[i * 2 + j];
        for (int s = 0; s <= t; ++s) S += std::exp(cum[t + 1] - cum[s + 1]) * k[s * 3 + i] * v[s * 2 + j];
        acc += S * q[t * 3 + i];
        if (t == c.T - 1) EXPECT_NEAR(sT[i * 2 + j], S, 1e-12);
      }
      EXPECT_NEAR(o[t * 2 + j], scale * acc, 1e-12) << "t=" << t << " j=" << j;
    }
  }
}

TEST(OracleClosedForm, Linear) { check_closed_form(LINATTN_RULE_LINEAR); }
TEST(OracleClosedForm, Gated) { check_closed_form(LINATTN_RULE_GATED); }

// Delta rule, d_k = 2, d_v = 1, by hand: from S = 0, one token with k = (1, 0), v = 2, beta = 0.5
// gives S = (1, 0)^T; then k = (0.6, 0.8), v = 1, beta = 1, decay ln(0.5) per key dim (0, 0.5
// scaled rows: exp(g) = (0.5, 1)): S -> (0.5, 0); r = 0.3; u = 0.7; S = (0.5+0.42, 0.56).
TEST(OracleClosedForm, GatedDeltaByHand) {
  LinearAttentionCase c;
  c.rule = LINATTN_RULE_GATED_DELTA;
  c.B = 1;
  c.T = 2;
  c.dk = 2;
  c.dv = 1;
  c.decay = DecayKind::kPerKeyDim;
  c.beta = BetaKind::kShared;
  c.has_past = false;
  c.act_dtype = LINATTN_FLOAT64;
  c.scale = 1.f;
  LinearAttentionInputs in = make_inputs(c);
  const double kv[] = {1, 0, 0.6, 0.8};
  in.key.set_values([&](int64_t e) { return kv[e]; });
  in.query.set_values([&](int64_t e) { return kv[e]; });
  const double vv[] = {2, 1};
  in.value.set_values([&](int64_t e) { return vv[e]; });
  const double bv[] = {0.5, 1};
  in.beta.set_values([&](int64_t e) { return bv[e]; });
  const double gv[] = {0, 0, std::log(0.5), 0};
  in.decay.set_values([&](int64_t e) { return gv[e]; });
  LinearAttentionOutputs ref;
  ASSERT_TRUE(run_oracle(c, in, &ref).ok());
  const std::vector<double> o = ref.output.values(), s = ref.present_state.values();
  EXPECT_NEAR(o[0], 1.0, 1e-12);                       // q = (1,0), S = (1,0)
  EXPECT_NEAR(s[0], 0.92, 1e-12);
  EXPECT_NEAR(s[1], 0.56, 1e-12);
  EXPECT_NEAR(o[1], 0.6 * 0.92 + 0.8 * 0.56, 1e-12);
}

}  // namespace
}  // namespace linattn::test
