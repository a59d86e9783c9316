// Every compiled CPU kernel path against the float64 oracle: the instruction-set dispatcher is
// forced to each set this CPU supports (portable, AVX2, AVX-512, AVX-512 with AVX512_BF16),
// and a compact matrix of
// LinearAttention and CausalConvWithState cases runs through the public API on each. Also:
// strong decay that makes the recurrent kernel fold the decay back into the state (and decay
// so strong that exp underflows to 0), head dimension 128 (several state blocks, a head split
// into column ranges across threads), and the dispatcher's own choice.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/oracle_runner.hpp"
#include "cpu/forced_isa.hpp"
#include "cpu/isa.hpp"
#include "cpu/recurrent.hpp"

namespace linattn::test {
namespace {

using detail::cpu::Isa;

const Isa kIsas[] = {Isa::kPortable, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16};

std::vector<LinearAttentionCase> attention_cases() {
  std::vector<LinearAttentionCase> v;
  const linattn_update_rule rules[] = {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED,
                                       LINATTN_RULE_DELTA, LINATTN_RULE_GATED_DELTA};
  const linattn_dtype dts[] = {LINATTN_FLOAT32, LINATTN_BFLOAT16, LINATTN_FLOAT16};
  struct Shape { int32_t Hq, Hk, Hkv, dk, dv; int64_t B, T; };
  const Shape shapes[] = {{2, 2, 4, 16, 16, 2, 65},  {4, 2, 2, 5, 7, 1, 130},
                          {6, 1, 2, 32, 48, 1, 1},    {1, 1, 1, 128, 128, 1, 70},
                          {2, 2, 2, 128, 128, 2, 1},  {1, 1, 3, 24, 40, 1, 300}};
  uint64_t seed = 100;
  int n = 0;
  for (linattn_update_rule r : rules)
    for (const Shape& s : shapes) {
      LinearAttentionCase c;
      c.rule = r;
      c.Hq = s.Hq;
      c.Hk = s.Hk;
      c.Hkv = s.Hkv;
      c.dk = s.dk;
      c.dv = s.dv;
      c.B = s.B;
      c.T = s.T;
      c.decay = c.rule_gated() ? (n % 2 ? DecayKind::kPerKeyDim : DecayKind::kPerHead)
                               : DecayKind::kNone;
      c.beta = c.rule_delta() ? (n % 3 == 2 ? BetaKind::kShared : BetaKind::kPerHead)
                              : BetaKind::kNone;
      c.act_dtype = dts[n % 3];
      c.state_dtype = dts[(n / 3) % 3];
      c.strided = n % 2 == 1;
      c.has_past = n % 5 != 4;
      c.seed = seed++;
      ++n;
      v.push_back(c);
    }
  return v;
}

std::vector<CausalConvCase> conv_cases() {
  std::vector<CausalConvCase> v;
  uint64_t seed = 500;
  int n = 0;
  for (int32_t K : {1, 3, 4, 5})
    for (int64_t L : {1, 5, 37})
      for (bool cl : {false, true}) {
        CausalConvCase c;
        c.K = K;
        c.L = L;
        c.C = n % 2 ? 300 : 19;
        c.B = 2;
        c.channels_last = cl;
        c.silu = n % 3 != 1;
        c.bias = n % 4 != 3;
        c.has_past = n % 5 != 2;
        c.act_dtype = n % 3 == 0 ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
        c.state_dtype = n % 4 == 1 ? LINATTN_FLOAT16 : LINATTN_FLOAT32;
        c.strided = n % 2 == 0;
        c.seed = seed++;
        ++n;
        v.push_back(c);
      }
  return v;
}

// A case run with its decay values replaced by decay(i) (logical row-major index), against the
// oracle on the same values.
CaseReport run_with_decay(const LinearAttentionCase& c, const std::function<double(int64_t)>& decay,
                          Context& ctx) {
  LinearAttentionInputs in = make_inputs(c);
  in.decay.set_values(decay);
  CaseReport r;
  r.name = c.name();
  LinearAttentionOutputs ref;
  Status s = run_oracle(c, in, &ref);
  if (!s.ok()) {
    r.error = "oracle: " + s.to_string();
    return r;
  }
  LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
  s = run_on(ctx, make_args(c, in, out), in, out, nullptr);
  if (!s.ok()) {
    r.error = s.to_string();
    return r;
  }
  return compare(c.name(), out.output, out.present_state, ref.output, ref.present_state,
                 default_tolerance(c));
}

// Decay g = -s * u, u uniform in (0, 1] per element: strong forgetting forces the kernel to
// fold the decay into the state many times; s = 300 makes exp(g) underflow to 0.
CaseReport run_strong_decay(const LinearAttentionCase& c, double strength, Context& ctx) {
  return run_with_decay(
      c, [&](int64_t i) { return -strength * (0.05 + 0.95 * std::fmod(0.6180339887 * (i + 1), 1.0)); },
      ctx);
}

// Decay that folds at chosen tokens: g = -25 (exp(g) < 2^-30) at tokens 3 mod 5 and 0 mod 7,
// -0.01 elsewhere, so folds fall on both members of a token pair, next to each other (27, 28),
// at a chunk's first token (0) and around the chunk boundary (63, 64).
CaseReport run_chosen_folds(const LinearAttentionCase& c, Context& ctx) {
  const int64_t per_token = c.decay == DecayKind::kPerKeyDim ? int64_t{c.Hkv} * c.dk : c.Hkv;
  return run_with_decay(
      c,
      [&](int64_t i) {
        const int64_t t = (i / per_token) % c.T;
        return t % 5 == 3 || t % 7 == 0 ? -25.0 : -0.01;
      },
      ctx);
}

class IsaPaths : public ::testing::TestWithParam<Isa> {};

TEST_P(IsaPaths, LinearAttentionMatchesOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  for (const LinearAttentionCase& c : attention_cases())
    for (int threads : {1, 2}) EXPECT_TRUE(passed(run_case(c, cpu_context(threads)))) << threads;
}

TEST_P(IsaPaths, StrongDecayFoldsMatchOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  for (DecayKind d : {DecayKind::kPerHead, DecayKind::kPerKeyDim})
    for (linattn_update_rule r : {LINATTN_RULE_GATED, LINATTN_RULE_GATED_DELTA})
      for (double strength : {0.5, 3.0, 300.0}) {
        LinearAttentionCase c;
        c.rule = r;
        c.decay = d;
        c.beta = r == LINATTN_RULE_GATED_DELTA ? BetaKind::kPerHead : BetaKind::kNone;
        c.Hq = c.Hk = 1;
        c.Hkv = 2;
        c.dk = 32;
        c.dv = 40;
        c.T = 150;
        c.seed = 900 + static_cast<uint64_t>(strength);
        EXPECT_TRUE(passed(run_strong_decay(c, strength, cpu_context(2))))
            << decay_kind_name(d) << " strength " << strength;
      }
}

// The recurrent kernel steps two tokens per state sweep except before a fold, past a chunk's
// end and with several query heads per kv head: every such boundary, odd lengths and both
// head mappings (one query head per kv head pairs tokens, two do not).
TEST_P(IsaPaths, FoldsBetweenTokenPairsMatchOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  for (DecayKind d : {DecayKind::kPerHead, DecayKind::kPerKeyDim})
    for (linattn_update_rule r : {LINATTN_RULE_GATED, LINATTN_RULE_GATED_DELTA})
      for (int32_t hq : {1, 4})
        for (int64_t T : {149, 130}) {
          LinearAttentionCase c;
          c.rule = r;
          c.decay = d;
          c.beta = r == LINATTN_RULE_GATED_DELTA ? BetaKind::kPerHead : BetaKind::kNone;
          c.Hq = hq;
          c.Hk = 1;
          c.Hkv = 2;
          c.dk = 40;
          c.dv = 48;
          c.T = T;
          c.seed = 950 + static_cast<uint64_t>(T + hq);
          EXPECT_TRUE(passed(run_chosen_folds(c, cpu_context(2))))
              << decay_kind_name(d) << " Hq " << hq << " T " << T;
        }
}

// Calls whose output reaches kStreamOutputBytes write it with streaming stores: every output
// dtype, aligned views and strided ones (rows not on vector boundaries take plain stores), one
// and two query heads per kv head, one thread and two.
TEST_P(IsaPaths, LargeOutputsStreamedMatchOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  const linattn_dtype dts[] = {LINATTN_FLOAT32, LINATTN_BFLOAT16, LINATTN_FLOAT16};
  for (int n = 0; n < 6; ++n) {
    LinearAttentionCase c;
    c.rule = n % 2 ? LINATTN_RULE_GATED_DELTA : LINATTN_RULE_GATED;
    c.decay = DecayKind::kPerHead;
    c.beta = c.rule_delta() ? BetaKind::kPerHead : BetaKind::kNone;
    c.act_dtype = dts[n % 3];
    c.Hk = 8;
    c.Hkv = 16;
    c.Hq = n >= 3 ? 32 : 8;  // two query heads per kv head, or inverse GQA
    c.dk = 16;
    c.dv = 128;
    c.strided = n == 2 || n == 3;
    const int64_t out_row = int64_t{std::max(c.Hq, c.Hkv)} * c.dv *
                            static_cast<int64_t>(linattn_dtype_size(c.act_dtype));
    c.T = detail::cpu::kStreamOutputBytes / out_row + 37;
    ASSERT_GE(c.T * out_row, detail::cpu::kStreamOutputBytes);
    c.seed = 1200 + static_cast<uint64_t>(n);
    EXPECT_TRUE(passed(run_case(c, cpu_context(n % 2 ? 1 : 2)))) << "case " << n;
  }
}

TEST_P(IsaPaths, CausalConvMatchesOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  for (const CausalConvCase& c : conv_cases()) EXPECT_TRUE(passed(run_case(c, cpu_context(2))));
}

// One-token steps with whole blocks of value columns (dv a multiple of 64) run straight on the
// caller's state rows: every rule, decay per head and per key dimension, one and two value
// heads per key head, a head split into column ranges across two threads, bfloat16
// activations, float16 and bfloat16 state, and a decay strong enough to fold (which takes the
// general path).
TEST_P(IsaPaths, DecodeOnCallerStateMatchesOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  const linattn_update_rule rules[] = {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED,
                                       LINATTN_RULE_DELTA, LINATTN_RULE_GATED_DELTA};
  for (int n = 0; n < 8; ++n) {
    LinearAttentionCase c;
    c.rule = rules[n % 4];
    c.decay = !c.rule_gated() ? DecayKind::kNone
                              : n % 3 == 0 ? DecayKind::kPerKeyDim : DecayKind::kPerHead;
    c.beta = c.rule_delta() ? BetaKind::kPerHead : BetaKind::kNone;
    c.B = n < 4 ? 3 : 1;
    c.T = 1;
    c.Hkv = 4;
    c.Hk = n % 2 ? 2 : 4;
    c.Hq = c.Hk;
    c.dk = n % 3 == 1 ? 64 : 128;
    c.dv = n % 4 == 2 ? 192 : 128;
    c.act_dtype = n == 5 ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
    c.state_dtype = n == 6 ? LINATTN_BFLOAT16 : n == 7 ? LINATTN_FLOAT16 : LINATTN_FLOAT32;
    c.seed = 1500 + static_cast<uint64_t>(n);
    Context& ctx = cpu_context(n % 2 ? 2 : 1);
    EXPECT_TRUE(passed(run_case(c, ctx))) << c.name();
    if (c.rule_gated()) EXPECT_TRUE(passed(run_strong_decay(c, 40.0, ctx))) << c.name();
  }
}

// Channels-first conv calls whose output reaches kStreamOutputBytes stream it: rows of whole
// vectors on aligned storage (L a multiple of 16), and strided rows that take plain stores.
TEST_P(IsaPaths, LargeConvOutputsStreamedMatchOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  const linattn_dtype dts[] = {LINATTN_FLOAT32, LINATTN_BFLOAT16, LINATTN_FLOAT16};
  for (int n = 0; n < 4; ++n) {
    CausalConvCase c;
    c.K = 4;
    c.B = 1;
    c.act_dtype = dts[n % 3];
    c.state_dtype = n == 2 ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
    const int64_t es = static_cast<int64_t>(linattn_dtype_size(c.act_dtype));
    c.L = 16400;
    c.C = detail::cpu::kStreamOutputBytes / (c.L * es) + 1;
    c.strided = n == 3;
    c.silu = n != 1;
    c.has_past = n != 2;
    c.seed = 1300 + static_cast<uint64_t>(n);
    EXPECT_TRUE(passed(run_case(c, cpu_context(n % 2 ? 1 : 2)))) << c.name();
  }
}

// Channels-first bfloat16 rows with k = 4 and L >= 128 take the bfloat16 dot-product path on
// AVX512_BF16 (the first 64 outputs and a ragged tail through a float window): lengths with no
// tail, a 63-output tail and several middle steps, with and without past state (float32 or
// bfloat16), bias and SiLU, packed and strided views.
TEST_P(IsaPaths, ConvBf16RowsMatchOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  const int64_t lengths[] = {128, 191, 300};
  for (int n = 0; n < 6; ++n) {
    CausalConvCase c;
    c.K = 4;
    c.B = 2;
    c.C = 5;
    c.L = lengths[n % 3];
    c.act_dtype = LINATTN_BFLOAT16;
    c.state_dtype = n % 2 ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
    c.has_past = n != 4;
    c.bias = n != 1;
    c.silu = n != 2;
    c.strided = n == 5;
    c.seed = 1600 + static_cast<uint64_t>(n);
    EXPECT_TRUE(passed(run_case(c, cpu_context(n % 2 ? 1 : 2)))) << c.name();
  }
}

// The decode step (L = 1, k = 4) has its own kernel per instruction set: every activation and
// state dtype pair, channel counts that leave a ragged last vector and span two work items
// (2053 = 2048 + 5), with and without past state, bias and SiLU.
TEST_P(IsaPaths, ConvDecodeStepMatchesOracle) {
  ForcedIsa f(GetParam());
  if (!f.ok()) GTEST_SKIP() << detail::cpu::isa_name(GetParam()) << " not available here";
  const linattn_dtype dts[] = {LINATTN_FLOAT32, LINATTN_FLOAT16, LINATTN_BFLOAT16};
  const int64_t channels[] = {5, 16, 300, 2053};
  int n = 0;
  for (linattn_dtype a : dts)
    for (linattn_dtype s : dts)
      for (int v = 0; v < 2; ++v, ++n) {
        CausalConvCase c;
        c.K = 4;
        c.L = 1;
        c.B = 3;
        c.C = channels[n % 4];
        c.act_dtype = a;
        c.state_dtype = s;
        c.has_past = n % 5 != 3;
        c.bias = n % 3 != 2;
        c.silu = v == 0;
        c.channels_last = n % 2 == 1;
        c.seed = 1400 + static_cast<uint64_t>(n);
        EXPECT_TRUE(passed(run_case(c, cpu_context(n % 3 == 0 ? 1 : 2)))) << c.name();
      }
}

INSTANTIATE_TEST_SUITE_P(Cpu, IsaPaths, ::testing::ValuesIn(kIsas),
                         [](const ::testing::TestParamInfo<Isa>& i) {
                           return std::string(detail::cpu::isa_name(i.param));
                         });

TEST(IsaDispatch, ChoosesAnAvailableSetAndRefusesMissingOnes) {
  EXPECT_TRUE(detail::cpu::isa_available(detail::cpu::active_isa()));
  EXPECT_TRUE(detail::cpu::isa_available(Isa::kPortable));
  for (Isa isa : kIsas) {
    ForcedIsa f(isa);
    EXPECT_EQ(f.ok(), detail::cpu::isa_available(isa));
    if (f.ok()) EXPECT_EQ(detail::cpu::active_isa(), isa);
  }
}

}  // namespace
}  // namespace linattn::test
