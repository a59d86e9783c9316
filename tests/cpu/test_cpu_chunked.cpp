// The chunked (WY) prefill kernel against the float64 oracle, through the public API with the
// CPU prefill path pinned to the chunked kernel (and to the recurrent one for comparison):
// lengths around the chunk size (63, 64, 65, 127, 128, 129) and longer (300, 1000), small heads
// and d = 128 heads, every rule, GQA / inverse GQA / key sharing, 16-bit activations and states,
// in-place state updates, chunk_size hints (which must not change results beyond rounding),
// strong decay (g down to -20 per token: exp underflows inside a chunk) and weak decay
// (g ~ -1e-4). Every compiled instruction set this CPU supports runs the core matrix.
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/oracle_runner.hpp"
#include "cpu/chunked_prefill.hpp"
#include "cpu/isa.hpp"

namespace linattn::test {
namespace {

using detail::cpu::Isa;
using detail::cpu::PrefillPath;

// Pins the prefill path (and optionally the instruction set) for the scope.
class Pinned {
 public:
  explicit Pinned(PrefillPath path, Isa isa = detail::cpu::active_isa())
      : prev_path_(detail::cpu::prefill_path()), prev_isa_(detail::cpu::active_isa()),
        ok_(detail::cpu::force_isa(isa)) {
    detail::cpu::force_prefill_path(path);
  }
  ~Pinned() {
    detail::cpu::force_prefill_path(prev_path_);
    detail::cpu::force_isa(prev_isa_);
  }
  bool ok() const { return ok_; }

 private:
  PrefillPath prev_path_;
  Isa prev_isa_;
  bool ok_;
};

struct Options {
  int32_t chunk_size = 0;
  bool in_place = false;
  std::function<double(int64_t)> decay;  // overrides the case's decay values when set
};

// One call on the CPU backend against the oracle. In place: past_state and present_state are
// the same buffer (a copy of the past state).
CaseReport run(const LinearAttentionCase& c, const Options& o, int threads = 2,
               HostTensor* output_copy = nullptr) {
  LinearAttentionInputs in = make_inputs(c);
  if (o.decay && in.decay.present()) in.decay.set_values(o.decay);
  CaseReport r;
  r.name = c.name();
  LinearAttentionOutputs ref;
  Status s = run_oracle(c, in, &ref);
  if (!s.ok()) {
    r.error = "oracle: " + s.to_string();
    return r;
  }
  LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
  linattn_linear_attention_args args = make_args(c, in, out);
  args.chunk_size = o.chunk_size;
  HostTensor shared;
  if (o.in_place && c.has_past) {
    shared = in.past_state.converted(c.state_dtype, c.strided);
    args.past_state = shared.view();
    args.present_state = shared.view();
  }
  s = run_on(cpu_context(threads), args, in, out, nullptr);
  if (!s.ok()) {
    r.error = s.to_string();
    return r;
  }
  if (output_copy != nullptr) *output_copy = out.output;
  const HostTensor& state = o.in_place && c.has_past ? shared : out.present_state;
  return compare(c.name(), out.output, state, ref.output, ref.present_state,
                 default_tolerance(c));
}

LinearAttentionCase make_case(linattn_update_rule rule, int32_t Hq, int32_t Hk, int32_t Hkv,
                              int32_t dk, int32_t dv, int64_t T, uint64_t seed) {
  LinearAttentionCase c;
  c.rule = rule;
  c.Hq = Hq;
  c.Hk = Hk;
  c.Hkv = Hkv;
  c.dk = dk;
  c.dv = dv;
  c.T = T;
  c.decay = c.rule_gated() ? DecayKind::kPerHead : DecayKind::kNone;
  c.beta = c.rule_delta() ? BetaKind::kPerHead : BetaKind::kNone;
  c.seed = seed;
  return c;
}

const linattn_update_rule kRules[] = {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED, LINATTN_RULE_DELTA,
                                      LINATTN_RULE_GATED_DELTA};

// Lengths around chunk boundaries, every rule, float32, small heads: the 1e-5 target.
TEST(CpuChunked, LengthsAndRulesSmallHeads) {
  Pinned pin(PrefillPath::kChunked);
  uint64_t seed = 1;
  for (linattn_update_rule rule : kRules)
    for (int64_t T : {1, 63, 64, 65, 127, 128, 129, 300, 1000}) {
      LinearAttentionCase c = make_case(rule, 2, 2, 2, 16, 24, T, seed++);
      c.has_past = T % 2 == 1;
      EXPECT_TRUE(passed(run(c, {}))) << "T " << T;
    }
}

// d = 128 heads (several column tiles; a head split into column ranges across threads).
TEST(CpuChunked, LengthsAndRulesHead128) {
  Pinned pin(PrefillPath::kChunked);
  uint64_t seed = 100;
  for (linattn_update_rule rule : kRules)
    for (int64_t T : {65, 129, 1000}) {
      if (T == 1000 && rule != LINATTN_RULE_GATED_DELTA) continue;  // keep the oracle time small
      LinearAttentionCase c = make_case(rule, 1, 1, 1, 128, 128, T, seed++);
      EXPECT_TRUE(passed(run(c, {}, 2))) << "T " << T;
      EXPECT_TRUE(passed(run(c, {}, 1))) << "T " << T << " one thread";
    }
}

// Head mappings, odd head sizes, shared beta, strided views, batches.
TEST(CpuChunked, HeadMappingsAndShapes) {
  Pinned pin(PrefillPath::kChunked);
  struct Shape { int32_t Hq, Hk, Hkv, dk, dv; int64_t B, T; };
  const Shape shapes[] = {{4, 2, 2, 16, 16, 2, 130},   // GQA 2 query heads per kv head
                          {2, 2, 4, 32, 32, 1, 129},   // inverse GQA (Qwen3-Next style)
                          {1, 1, 3, 24, 40, 1, 200},   // key sharing, odd widths
                          {6, 1, 2, 5, 7, 2, 97},      // tiny odd heads, GQA 3
                          {2, 1, 4, 64, 48, 1, 70}};
  uint64_t seed = 200;
  int n = 0;
  for (linattn_update_rule rule : kRules)
    for (const Shape& s : shapes) {
      LinearAttentionCase c = make_case(rule, s.Hq, s.Hk, s.Hkv, s.dk, s.dv, s.T, seed++);
      c.B = s.B;
      c.strided = n % 2 == 1;
      c.has_past = n % 3 != 2;
      if (c.rule_delta() && n % 3 == 1) c.beta = BetaKind::kShared;
      ++n;
      EXPECT_TRUE(passed(run(c, {})));
    }
}

// 16-bit activations and states, in-place updates.
TEST(CpuChunked, DtypesAndInPlace) {
  Pinned pin(PrefillPath::kChunked);
  const linattn_dtype acts[] = {LINATTN_FLOAT32, LINATTN_BFLOAT16, LINATTN_FLOAT16};
  const linattn_dtype states[] = {LINATTN_FLOAT32, LINATTN_BFLOAT16};
  uint64_t seed = 300;
  for (linattn_dtype a : acts)
    for (linattn_dtype st : states)
      for (bool in_place : {false, true}) {
        LinearAttentionCase c = make_case(LINATTN_RULE_GATED_DELTA, 2, 2, 4, 32, 48, 150, seed++);
        c.act_dtype = a;
        c.state_dtype = st;
        Options o;
        o.in_place = in_place;
        EXPECT_TRUE(passed(run(c, o))) << (in_place ? "in place" : "separate");
      }
}

// chunk_size is a hint: every hint gives the same results within rounding (here: identical,
// the kernel's chunk is fixed), and the chunked and recurrent paths agree within 1e-5.
TEST(CpuChunked, ChunkSizeHintsAndRecurrentAgree) {
  LinearAttentionCase c = make_case(LINATTN_RULE_GATED_DELTA, 2, 2, 2, 32, 32, 300, 400);
  HostTensor first, o;
  {
    Pinned pin(PrefillPath::kChunked);
    for (int32_t hint : {0, 16, 32, 64, 128}) {
      Options opt;
      opt.chunk_size = hint;
      EXPECT_TRUE(passed(run(c, opt, 2, &o))) << "hint " << hint;
      if (hint == 0) first = o;
      else
        EXPECT_LE(rel_frobenius(o.values(), first.values()), 1e-6) << "hint " << hint;
    }
  }
  Pinned pin(PrefillPath::kRecurrent);
  EXPECT_TRUE(passed(run(c, {}, 2, &o)));
  EXPECT_LE(rel_frobenius(o.values(), first.values()), 1e-5);
}

// Strong decay (g uniform in (-20, -0.5] per token: exp(G_r - G_s) underflows inside a chunk)
// and weak decay (g ~ -1e-4: prefix sums that barely move).
TEST(CpuChunked, StrongAndWeakDecay) {
  Pinned pin(PrefillPath::kChunked);
  uint64_t seed = 500;
  for (linattn_update_rule rule : {LINATTN_RULE_GATED, LINATTN_RULE_GATED_DELTA})
    for (int which = 0; which < 3; ++which) {
      LinearAttentionCase c = make_case(rule, 1, 1, 2, 32, 40, 200, seed++);
      Options o;
      if (which == 0)
        o.decay = [](int64_t i) { return -20.0 * (0.025 + 0.975 * std::fmod(0.618034 * (i + 1), 1.0)); };
      else if (which == 1)
        o.decay = [](int64_t i) { return -1e-4 * (0.5 + std::fmod(0.618034 * (i + 1), 1.0)); };
      else  // mixed: mostly weak with occasional resets
        o.decay = [](int64_t i) { return i % 37 == 5 ? -20.0 : -1e-3; };
      EXPECT_TRUE(passed(run(c, o))) << "decay kind " << which;
    }
}

// Every compiled instruction set this CPU runs (portable, AVX2, AVX-512) on a compact matrix.
TEST(CpuChunked, EveryInstructionSet) {
  for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512}) {
    Pinned pin(PrefillPath::kChunked, isa);
    if (!pin.ok()) continue;
    uint64_t seed = 600;
    for (linattn_update_rule rule : kRules) {
      LinearAttentionCase c = make_case(rule, 2, 1, 2, 48, 40, 129, seed++);
      EXPECT_TRUE(passed(run(c, {}))) << detail::cpu::isa_name(isa);
      LinearAttentionCase d = make_case(rule, 1, 1, 1, 128, 128, 65, seed++);
      d.act_dtype = LINATTN_BFLOAT16;
      EXPECT_TRUE(passed(run(d, {}))) << detail::cpu::isa_name(isa);
    }
  }
}

// The automatic choice (chunked for long prompts of the rules without delta at head size
// 256, recurrent otherwise) on both sides of its thresholds.
TEST(CpuChunked, AutomaticChoiceMatchesOracle) {
  Pinned pin(PrefillPath::kAuto);
  uint64_t seed = 800;
  for (linattn_update_rule rule : kRules)
    for (int32_t d : {128, 256})
      for (int64_t T : {127, 200}) {
        LinearAttentionCase c = make_case(rule, 1, 1, 2, d, d, T, seed++);
        EXPECT_TRUE(passed(run(c, {}))) << d << " " << T;
      }
}

// Per-key-dim decay is not chunked: the pinned chunked path falls back to the recurrent kernel.
TEST(CpuChunked, PerKeyDimDecayFallsBack) {
  Pinned pin(PrefillPath::kChunked);
  LinearAttentionCase c = make_case(LINATTN_RULE_GATED_DELTA, 2, 2, 2, 16, 16, 130, 700);
  c.decay = DecayKind::kPerKeyDim;
  EXPECT_TRUE(passed(run(c, {})));
}

}  // namespace
}  // namespace linattn::test
