// The CPU backend against the float64 oracle, through the public API, over the case matrix of
// tests/common/case_matrix.hpp (update rule x head mapping x decay kind x beta kind x
// activation dtype x state dtype x length x strided views, plus past/no past, batch, head sizes
// including odd ones, explicit scale).
// Also here: closed-form checks of the oracle itself, so it is not only trusted by agreement.
#include <cmath>
#include <iterator>
#include <vector>

#include <gtest/gtest.h>

#include "common/case_matrix.hpp"
#include "common/cases.hpp"
#include "common/oracle_runner.hpp"

namespace linattn::test {
namespace {

const int64_t kLengths[] = {0, 1, 2, 63, 64, 65, 127, 129, 300};
const HeadDims kDims[] = {{16, 16}, {32, 32}, {16, 32}, {5, 7}, {32, 16}};

std::vector<LinearAttentionCase> build_matrix() {
  return build_attention_matrix({{std::begin(kLengths), std::end(kLengths)},
                                 {std::begin(kDims), std::end(kDims)}, 1});
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
  for (linattn_update_rule rule : kMatrixRules) {
    auto any = [&](auto pred) {
      for (const LinearAttentionCase& c : cases)
        if (c.rule == rule && pred(c)) return true;
      return false;
    };
    const char* r = rule_short_name(rule);
    for (const HeadMapping& m : kMatrixMappings)
      EXPECT_TRUE(any([&](auto& c) { return c.Hq == m.Hq && c.Hk == m.Hk && c.Hkv == m.Hkv; }))
          << r;
    for (DecayKind d : kMatrixDecays) {
      const bool needed = rule == LINATTN_RULE_GATED || rule == LINATTN_RULE_GATED_DELTA;
      if (needed && d == DecayKind::kNone) continue;  // invalid call, not a numeric case
      EXPECT_TRUE(any([&](auto& c) { return c.decay == d; })) << r << " " << decay_kind_name(d);
    }
    for (BetaKind b : kMatrixBetas) {
      const bool needed = rule == LINATTN_RULE_DELTA || rule == LINATTN_RULE_GATED_DELTA;
      if (needed && b == BetaKind::kNone) continue;
      EXPECT_TRUE(any([&](auto& c) { return c.beta == b; })) << r << " " << beta_kind_name(b);
    }
    for (linattn_dtype t : kMatrixDtypes) {
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
