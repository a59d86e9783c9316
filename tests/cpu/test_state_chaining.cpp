// State carried across calls: T tokens in one call, T single-token calls and random splits (the
// present_state of one call fed as the past_state of the next, separately allocated or updated
// in place) must all agree with the one-shot float64 oracle. CPU backend, public API.
#include <ostream>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/oracle_runner.hpp"

namespace linattn::test {
namespace {

enum class Split { kWhole, kSingleTokens, kRandom };

struct ChainCase {
  LinearAttentionCase c;
  Split split;
  bool in_place;
};

// Segment boundaries 0 = b_0 <= b_1 <= ... = T (random splits include empty segments).
std::vector<int64_t> boundaries(int64_t T, Split split, uint64_t seed) {
  std::vector<int64_t> b{0};
  if (split == Split::kWhole) {
    b.push_back(T);
  } else if (split == Split::kSingleTokens) {
    for (int64_t t = 1; t <= T; ++t) b.push_back(t);
  } else {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int64_t> len(0, 70);
    int64_t t = 0;
    while (t < T) {
      t = std::min(T, t + len(rng));
      b.push_back(t);
    }
    if (b.size() == 1) b.push_back(T);
  }
  return b;
}

CaseReport run_chained(const ChainCase& cc) {
  const LinearAttentionCase& c = cc.c;
  const LinearAttentionInputs in = make_inputs(c);
  CaseReport r;
  r.name = c.name();
  LinearAttentionOutputs ref;
  Status s = run_oracle(c, in, &ref);
  if (!s.ok()) {
    r.error = "oracle: " + s.to_string();
    return r;
  }
  LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
  // Two state buffers: calls ping-pong between them, or stay on `a` when in place.
  HostTensor a = c.has_past ? in.past_state.converted(c.state_dtype, c.strided)
                            : make_outputs(c, c.act_dtype, c.state_dtype, c.strided).present_state;
  HostTensor bbuf = make_outputs(c, c.act_dtype, c.state_dtype, c.strided).present_state;
  HostTensor* cur = &a;
  HostTensor* next = cc.in_place ? &a : &bbuf;
  bool have_state = c.has_past;

  const std::vector<int64_t> b = boundaries(c.T, cc.split, c.seed);
  for (size_t i = 0; i + 1 < b.size(); ++i) {
    linattn_linear_attention_args args = make_args(c, in, out);
    for (linattn_tensor* v : {&args.query, &args.key, &args.value, &args.decay, &args.beta,
                              &args.output})
      if (v->rank > 0) *v = slice_view(*v, 1, b[i], b[i + 1]);
    args.past_state = have_state ? cur->view() : linattn_tensor_absent();
    // With no state yet, the first call cannot be in place: it writes `a` from zeros.
    HostTensor* dst = (cc.in_place && !have_state) ? &a : next;
    args.present_state = dst->view();
    s = run_on(cpu_context(), args, in, out, nullptr);
    if (!s.ok()) {
      r.error = "call " + std::to_string(i) + ": " + s.to_string();
      return r;
    }
    have_state = true;
    if (!cc.in_place) std::swap(cur, next);
    else cur = &a;
  }
  Tolerance tol = default_tolerance(c);
  if (c.state_dtype != LINATTN_FLOAT32) {
    // The state is rounded at every call boundary, so the error grows with the number of calls
    // (mildly: decay and the delta rule keep old rounding errors from piling up).
    tol.output = tol.state = 8 * dtype_tolerance(c.state_dtype) + tol.output;
  }
  return compare(c.name(), out.output, *cur, ref.output, ref.present_state, tol);
}

std::vector<ChainCase> chain_cases() {
  std::vector<ChainCase> v;
  uint64_t seed = 100;
  const linattn_update_rule rules[] = {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED,
                                       LINATTN_RULE_DELTA, LINATTN_RULE_GATED_DELTA};
  int n = 0;
  for (linattn_update_rule rule : rules)
    for (Split split : {Split::kWhole, Split::kSingleTokens, Split::kRandom})
      for (bool in_place : {false, true})
        for (bool has_past : {true, false}) {
          LinearAttentionCase c;
          c.rule = rule;
          c.B = 2;
          c.T = split == Split::kSingleTokens ? 37 : 150;
          const int32_t maps[3][3] = {{2, 2, 4}, {4, 2, 2}, {2, 1, 2}};
          c.Hq = maps[n % 3][0];
          c.Hk = maps[n % 3][1];
          c.Hkv = maps[n % 3][2];
          c.dk = (n % 4 == 3) ? 5 : 16;
          c.dv = (n % 4 == 3) ? 7 : (n % 4 == 1) ? 64 : 32;  // 64: whole AVX-512 blocks
          c.decay = (n % 2) ? DecayKind::kPerKeyDim : DecayKind::kPerHead;
          c.beta = (n % 3 == 0) ? BetaKind::kShared : BetaKind::kPerHead;
          c.act_dtype = (n % 5 == 2) ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
          c.state_dtype = (n % 7 == 4 || n % 12 == 5) ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
          c.strided = (n % 2) == 1;
          c.has_past = has_past;
          c.seed = seed++;
          v.push_back({c, split, in_place});
          ++n;
        }
  return v;
}

void PrintTo(const ChainCase& cc, std::ostream* os) {
  static const char* const kSplit[] = {" whole", " single", " random"};
  *os << cc.c.name() << kSplit[static_cast<int>(cc.split)]
      << (cc.in_place ? " in place" : " ping-pong");
}

class StateChaining : public ::testing::TestWithParam<ChainCase> {};

TEST_P(StateChaining, MatchesOneShotOracle) { EXPECT_TRUE(passed(run_chained(GetParam()))); }

std::string chain_name(const ::testing::TestParamInfo<ChainCase>& info) {
  static const char* const kSplit[] = {"whole", "single", "random"};
  return std::to_string(info.index) + "_" + kSplit[static_cast<int>(info.param.split)] +
         (info.param.in_place ? "_inplace_" : "_pingpong_") + info.param.c.name();
}

INSTANTIATE_TEST_SUITE_P(Cpu, StateChaining, ::testing::ValuesIn(chain_cases()), chain_name);

}  // namespace
}  // namespace linattn::test
