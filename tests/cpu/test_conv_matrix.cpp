// CausalConvWithState on the CPU backend against the float64 oracle, through the public API:
// kernel width k = 1..5 x length L (including L < k-1, where the state keeps the tail of the
// past) x bias x past x activation x layout, full product, with dtypes, strides, channel counts
// (one that spans several channel blocks) and batch cycling; then dtype x state dtype x strided
// x layout, full product; then chaining: L tokens at once == L single-token calls == random
// splits, with the state carried through separate buffers or in place; and the float32 k = 4
// decode step over channel and batch counts that exercise its vector groups and tails.
#include <algorithm>
#include <ostream>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/oracle_runner.hpp"

namespace linattn::test {
namespace {

const linattn_dtype kDtypes[] = {LINATTN_FLOAT32, LINATTN_FLOAT16, LINATTN_BFLOAT16};
const int64_t kLengths[] = {0, 1, 2, 3, 7, 64, 129};
const int64_t kChannels[] = {8, 1, 37, 300};

std::vector<CausalConvCase> conv_cases() {
  std::vector<CausalConvCase> v;
  uint64_t seed = 1;
  int n = 0;
  for (int32_t K = 1; K <= 5; ++K)
    for (int64_t L : kLengths)
      for (bool bias : {false, true})
        for (bool past : {false, true})
          for (bool silu : {false, true})
            for (bool clast : {false, true}) {
              CausalConvCase c;
              c.K = K;
              c.L = L;
              c.bias = bias;
              c.has_past = past;
              c.silu = silu;
              c.channels_last = clast;
              c.act_dtype = kDtypes[n % 3];
              c.state_dtype = kDtypes[(n / 3) % 3];
              c.strided = (n / 2) % 2 == 1;
              c.C = kChannels[(n / 5) % 4];
              c.B = 1 + (n % 2);
              c.seed = seed++;
              v.push_back(c);
              ++n;
            }
  for (linattn_dtype act : kDtypes)
    for (linattn_dtype state : kDtypes)
      for (bool strided : {false, true})
        for (bool clast : {false, true}) {
          CausalConvCase c;
          c.K = 2 + n % 4;
          c.L = kLengths[n % 7];
          c.C = kChannels[n % 4];
          c.B = 2;
          c.act_dtype = act;
          c.state_dtype = state;
          c.strided = strided;
          c.channels_last = clast;
          c.seed = seed++;
          v.push_back(c);
          ++n;
        }
  // The k = 4 decode kernel (L = 1), float32: channel counts below, at and past one 8-channel
  // group, with ragged tails, and past one 2048-channel work item; several batch rows.
  for (int64_t C : {1, 8, 13, 264, 517, 2053})
    for (bool bias : {false, true})
      for (bool past : {false, true})
        for (bool silu : {false, true}) {
          CausalConvCase c;
          c.K = 4;
          c.L = 1;
          c.C = C;
          c.B = C > 100 ? 2 : 11;
          c.bias = bias;
          c.has_past = past;
          c.silu = silu;
          c.channels_last = (n % 2) == 1;
          c.seed = seed++;
          v.push_back(c);
          ++n;
        }
  // The same kernel with every activation and state type: 16-bit values widened on load and
  // rounded once on store, the trailing SiLU of 16-bit outputs (channels past kLag = 64).
  for (linattn_dtype act : kDtypes)
    for (linattn_dtype state : kDtypes)
      for (int64_t C : {13, 200, 2053}) {
        CausalConvCase c;
        c.K = 4;
        c.L = 1;
        c.C = C;
        c.B = 3;
        c.bias = n % 2 == 0;
        c.has_past = n % 5 != 3;
        c.silu = n % 3 != 1;
        c.act_dtype = act;
        c.state_dtype = state;
        c.channels_last = (n / 2) % 2 == 1;
        c.seed = seed++;
        v.push_back(c);
        ++n;
      }
  return v;
}

std::string case_name(const ::testing::TestParamInfo<CausalConvCase>& info) {
  return std::to_string(info.index) + "_" + info.param.name();
}

class ConvMatrix : public ::testing::TestWithParam<CausalConvCase> {};

TEST_P(ConvMatrix, CpuMatchesOracle) { EXPECT_TRUE(passed(run_case(GetParam(), cpu_context()))); }

INSTANTIATE_TEST_SUITE_P(Cpu, ConvMatrix, ::testing::ValuesIn(conv_cases()), case_name);

// --- Chaining -------------------------------------------------------------------------------

enum class Split { kSingleTokens, kRandom };

struct ConvChainCase {
  CausalConvCase c;
  Split split;
  bool in_place;
};

CaseReport run_chained(const ConvChainCase& cc) {
  const CausalConvCase& c = cc.c;
  const CausalConvInputs in = make_inputs(c);
  CaseReport r;
  r.name = c.name();
  CausalConvOutputs ref;
  Status s = run_oracle(c, in, &ref);
  if (!s.ok()) {
    r.error = "oracle: " + s.to_string();
    return r;
  }
  CausalConvOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
  HostTensor a = c.has_past ? in.past_state.converted(c.state_dtype, c.strided)
                            : make_outputs(c, c.act_dtype, c.state_dtype, c.strided).present_state;
  HostTensor bbuf = make_outputs(c, c.act_dtype, c.state_dtype, c.strided).present_state;
  HostTensor* cur = &a;
  HostTensor* next = cc.in_place ? &a : &bbuf;
  bool have_state = c.has_past;

  std::vector<int64_t> b{0};
  std::mt19937_64 rng(c.seed);
  std::uniform_int_distribution<int64_t> len(0, 6);
  for (int64_t t = 0; t < c.L;) {
    t = cc.split == Split::kSingleTokens ? t + 1 : std::min(c.L, t + len(rng));
    b.push_back(t);
  }
  const int time_dim = c.channels_last ? 1 : 2;
  for (size_t i = 0; i + 1 < b.size(); ++i) {
    linattn_causal_conv_args args = make_args(c, in, out);
    args.input = slice_view(args.input, time_dim, b[i], b[i + 1]);
    args.output = slice_view(args.output, time_dim, b[i], b[i + 1]);
    args.past_state = have_state ? cur->view() : linattn_tensor_absent();
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
  // The state holds past inputs, so a state dtype narrower than the activations rounds inputs
  // at every call boundary: the outputs then carry the state's rounding too.
  Tolerance tol = default_tolerance(c);
  tol.output = std::max(tol.output, tol.state + tol.output);
  return compare(c.name(), out.output, *cur, ref.output, ref.present_state, tol);
}

std::vector<ConvChainCase> chain_cases() {
  std::vector<ConvChainCase> v;
  uint64_t seed = 5000;
  int n = 0;
  for (int32_t K : {1, 2, 4, 5})
    for (Split split : {Split::kSingleTokens, Split::kRandom})
      for (bool in_place : {false, true}) {
        CausalConvCase c;
        c.K = K;
        c.L = 29;
        c.C = kChannels[n % 4];
        c.B = 2;
        c.has_past = n % 3 != 1;
        c.bias = n % 2 == 0;
        c.silu = n % 3 != 2;
        c.channels_last = (n / 2) % 2 == 1;
        c.act_dtype = kDtypes[n % 3];
        c.state_dtype = kDtypes[(n / 3) % 3];
        c.strided = n % 2 == 1;
        c.seed = seed++;
        v.push_back({c, split, in_place});
        ++n;
      }
  return v;
}

std::string chain_name(const ::testing::TestParamInfo<ConvChainCase>& info) {
  return std::to_string(info.index) +
         (info.param.split == Split::kSingleTokens ? "_single" : "_random") +
         (info.param.in_place ? "_inplace_" : "_pingpong_") + info.param.c.name();
}

void PrintTo(const ConvChainCase& cc, std::ostream* os) {
  *os << cc.c.name() << (cc.split == Split::kSingleTokens ? " single" : " random")
      << (cc.in_place ? " in place" : " ping-pong");
}

class ConvChaining : public ::testing::TestWithParam<ConvChainCase> {};

TEST_P(ConvChaining, MatchesOneShotOracle) { EXPECT_TRUE(passed(run_chained(GetParam()))); }

INSTANTIATE_TEST_SUITE_P(Cpu, ConvChaining, ::testing::ValuesIn(chain_cases()), chain_name);

}  // namespace
}  // namespace linattn::test
