// Serving extensions of LinearAttention (docs/SERVING.md) on the CPU and reference backends,
// against the float64 oracle run densely per sequence (or per token, or per segment) by the
// test's own bookkeeping: variable-length batches with zero-length sequences, state pools with
// PAD slots, separate read slots, has_initial_state and padded slot strides, mixed prefill and
// decode, resumption from the pool equal to one long call, speculative decoding with every
// acceptance count, prefix-cache checkpoints, value-major states, fused q/k L2 norm and gating.
#include <algorithm>
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "serving_support.hpp"

namespace linattn::test::serving {
namespace {

constexpr double kTol = 5e-5;  // float32 activations and state against the float64 oracle

HostTensor make_output(const LinearAttentionCase& c, int64_t B, int64_t T) {
  HostTensor o(c.act_dtype, {B, T, int64_t{c.Hout()} * c.dv}, true);
  o.poison();
  return o;
}

LinearAttentionArgs base_args(const LinearAttentionCase& c, const LinearAttentionInputs& in,
                              const HostTensor& out, const HostTensor& present) {
  LinearAttentionArgs a = default_linear_attention_args();
  a.q_num_heads = c.Hq;
  a.kv_num_heads = c.Hkv;
  a.update_rule = c.rule;
  a.query = in.query.view();
  a.key = in.key.view();
  a.value = in.value.view();
  a.decay = in.decay.view();
  a.beta = in.beta.view();
  a.output = out.view();
  a.present_state = present.view();
  return a;
}

class Serving : public ::testing::TestWithParam<linattn_backend> {
 protected:
  Context& ctx() { return backend_context(GetParam()); }
};

// Packed sequences (zero-length ones included), one state row per sequence, has_initial_state.
// The int64 run uses standard GQA with key sharing, per-key-dim decay and a shared beta (the
// adapter splits calls by head groups, so every head mapping must survive the split).
TEST_P(Serving, VarlenRowsMatchPerSequenceOracle) {
  for (linattn_dtype idx : {LINATTN_INT32, LINATTN_INT64}) {
    const std::vector<int64_t> lens{0, 1, 63, 65, 130, 5};
    const std::vector<int64_t> cu = cu_from_lengths(lens);
    const int64_t N = lens.size(), T = cu.back();
    LinearAttentionCase c = small_case(1, T, 11);
    if (idx == LINATTN_INT64) {
      c.Hq = 8, c.Hk = 2, c.Hkv = 4;
      c.decay = DecayKind::kPerKeyDim;
      c.beta = BetaKind::kShared;
    }
    const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
    HostTensor past = make_pool(c, N, false, true, 5), pres = make_pool(c, N, false, false, 6);
    pres.poison();
    HostTensor out = make_output(c, 1, T);
    const HostTensor cu_t = index_tensor(idx, cu);
    const HostTensor init = index_tensor(idx, {1, 1, 0, 1, 1, 0});
    LinearAttentionArgs a = base_args(c, in, out, pres);
    a.past_state = past.view();
    a.serving.cu_seqlens = cu_t.view();
    a.serving.has_initial_state = init.view();
    ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();
    for (int64_t n = 0; n < N; ++n) {
      const State s0 = read_slot(past, n, false, c);
      const bool from_past = n != 2 && n != 5;
      const OracleRun r = oracle_range(c, in64, 0, cu[n], lens[n], from_past ? &s0 : nullptr);
      EXPECT_LT(rel_frobenius(token_rows(out, 0, cu[n], lens[n]), r.out), kTol) << "seq " << n;
      EXPECT_LT(rel_frobenius(read_slot(pres, n, false, c), r.state), kTol) << "seq " << n;
    }
    EXPECT_TRUE(out.padding_is_nan());
  }
}

enum class ReadFrom { kPresentInPlace, kAliasedPast, kReadIndices };

// A mixed batch (prefill and decode sequences, a zero-length one, a PAD) over a strided pool.
TEST_P(Serving, PoolMixedBatchMatchesGatherScatterOracle) {
  for (ReadFrom mode : {ReadFrom::kPresentInPlace, ReadFrom::kAliasedPast,
                        ReadFrom::kReadIndices}) {
    const std::vector<int64_t> lens{3, 1, 1, 70, 0, 1, 1};
    // No slot written by one sequence is read by another (docs/SERVING.md "Sharing slots": the
    // result would depend on the order the sequences run in; reading slot 3, which sequence 6
    // writes, made sequence 5 fail about once in a few runs on two threads). Two sequences
    // read slot 5, which neither writes.
    const std::vector<int64_t> slot{4, -1, 7, 0, 2, 8, 3};
    const std::vector<int64_t> rd{5, 0, 6, -1, 2, 5, 1};
    const std::vector<int64_t> init{1, 1, 1, 0, 1, 1, 1};
    const std::vector<int64_t> cu = cu_from_lengths(lens);
    const int64_t N = lens.size(), T = cu.back(), slots = 9;
    LinearAttentionCase c = small_case(1, T, 21 + static_cast<int>(mode));
    const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
    HostTensor pool = make_pool(c, slots, false, true, 7);
    std::vector<State> model = read_pool(pool, false, c);
    HostTensor out = make_output(c, 1, T);
    const HostTensor cu_t = index_tensor(LINATTN_INT32, cu), si = index_tensor(LINATTN_INT64, slot);
    const HostTensor ri = index_tensor(LINATTN_INT32, rd), hi = index_tensor(LINATTN_INT32, init);
    LinearAttentionArgs a = base_args(c, in, out, pool);
    if (mode == ReadFrom::kAliasedPast) a.past_state = pool.view();
    if (mode == ReadFrom::kReadIndices) a.serving.read_state_indices = ri.view();
    a.serving.cu_seqlens = cu_t.view();
    a.serving.state_indices = si.view();
    a.serving.has_initial_state = hi.view();
    ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();

    const std::vector<State> before = model;
    for (int64_t n = 0; n < N; ++n) {
      const std::vector<double> got = token_rows(out, 0, cu[n], lens[n]);
      if (slot[n] < 0) {
        for (double x : got) EXPECT_EQ(x, 0.0) << "PAD sequence " << n << " output";
        continue;
      }
      const int64_t r = mode == ReadFrom::kReadIndices ? rd[n] : slot[n];
      const bool zeros = !init[n] || r < 0;
      const OracleRun o = oracle_range(c, in64, 0, cu[n], lens[n], zeros ? nullptr : &before[r]);
      model[slot[n]] = o.state;
      EXPECT_LT(rel_frobenius(got, o.out), kTol) << "seq " << n;
    }
    EXPECT_LT(max_slot_error(read_pool(pool, false, c), model), kTol);
    EXPECT_TRUE(pool.padding_is_nan()) << "a write landed in the slot padding";
  }
}

// The CPU runs the fast-path sequences of a call as one batched kernel call
// (src/cpu/serving_rows.hpp). Heads 64 wide, so the prompts of 128 tokens and more take the
// chunked kernel under the rule without delta and the recurrent one under the delta rule; the
// 300-token prompt is long enough next to the others to be cut into value-column ranges; decode
// rows, a zero-length row and a PAD in the middle of the batch; the in-place pool and a separate
// read pool, both with padded slot strides; 1, 2 and 3 threads. Slots nobody writes stay
// bit-identical.
TEST_P(Serving, BatchedRowsLongPromptAmongShortOnes) {
  const std::vector<int64_t> lens{300, 1, 0, 140, 1, 37, 2};
  const std::vector<int64_t> slot{5, 0, 2, 6, -1, 1, 3};
  const std::vector<int64_t> init{1, 1, 1, 0, 1, 1, 1};
  const std::vector<int64_t> cu = cu_from_lengths(lens);
  const int64_t N = lens.size(), T = cu.back(), slots = 8;
  for (int threads : {1, 2, 3}) {
    if (GetParam() == LINATTN_BACKEND_REFERENCE && threads != 2) continue;
    Context& cx = GetParam() == LINATTN_BACKEND_REFERENCE ? ctx() : cpu_context(threads);
    for (linattn_update_rule rule : {LINATTN_RULE_GATED, LINATTN_RULE_GATED_DELTA}) {
      for (bool separate : {false, true}) {
        LinearAttentionCase c = small_case(1, T, 41 + threads, rule);
        c.Hq = 4, c.Hk = 1, c.Hkv = 2;
        c.dk = c.dv = 64;
        const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
        HostTensor pool = make_pool(c, slots, false, true, 9);
        HostTensor src = make_pool(c, slots, false, true, 10);
        const std::vector<State> start = read_pool(pool, false, c);
        const std::vector<State> read_from = separate ? read_pool(src, false, c) : start;
        HostTensor out = make_output(c, 1, T);
        const HostTensor cu_t = index_tensor(LINATTN_INT64, cu);
        const HostTensor si = index_tensor(LINATTN_INT32, slot);
        const HostTensor hi = index_tensor(LINATTN_INT64, init);
        LinearAttentionArgs a = base_args(c, in, out, pool);
        if (separate) a.past_state = src.view();
        a.serving.cu_seqlens = cu_t.view();
        a.serving.state_indices = si.view();
        a.serving.has_initial_state = hi.view();
        ASSERT_TRUE(linear_attention(cx, a).ok()) << linattn_last_error();

        std::vector<State> model = start;
        for (int64_t n = 0; n < N; ++n) {
          const std::vector<double> got = token_rows(out, 0, cu[n], lens[n]);
          if (slot[n] < 0) {
            for (double x : got) EXPECT_EQ(x, 0.0) << "PAD sequence " << n << " output";
            continue;
          }
          const OracleRun o = oracle_range(c, in64, 0, cu[n], lens[n],
                                           init[n] ? &read_from[slot[n]] : nullptr);
          model[slot[n]] = o.state;
          EXPECT_LT(rel_frobenius(got, o.out), kTol)
              << "seq " << n << ", threads " << threads << ", separate " << separate;
        }
        const std::vector<State> got = read_pool(pool, false, c);
        EXPECT_LT(max_slot_error(got, model), kTol);
        for (int64_t s = 0; s < slots; ++s)
          if (std::find(slot.begin(), slot.end(), s) == slot.end())
            EXPECT_EQ(got[s], start[s]) << "slot " << s << " is written by no sequence";
        EXPECT_TRUE(pool.padding_is_nan()) << "a write landed in the slot padding";
        if (separate) {
          EXPECT_EQ(read_pool(src, false, c), read_from) << "the read pool was written";
        }
      }
    }
  }
}

// Prefill in pieces through a pool slot (with decode steps in between) equals one long call.
TEST_P(Serving, ResumptionFromPoolEqualsOneLongCall) {
  const int64_t T = 300;
  LinearAttentionCase c = small_case(1, T, 31);
  const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
  const OracleRun whole = oracle_range(c, in64, 0, 0, T, nullptr);
  HostTensor pool = make_pool(c, 4, false, false, 8);
  HostTensor out = make_output(c, 1, T);
  const std::vector<int64_t> cuts{0, 100, 101, 102, 229, 300};
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    LinearAttentionArgs a = base_args(c, in, out, pool);
    for (linattn_tensor* v : {&a.query, &a.key, &a.value, &a.decay, &a.beta, &a.output})
      *v = slice_view(*v, 1, cuts[i], cuts[i + 1]);
    const HostTensor cu_t = index_tensor(LINATTN_INT32, {0, cuts[i + 1] - cuts[i]});
    const HostTensor si = index_tensor(LINATTN_INT32, {2});
    const HostTensor hi = index_tensor(LINATTN_INT32, {i > 0 ? 1 : 0});
    a.serving.cu_seqlens = cu_t.view();
    a.serving.state_indices = si.view();
    a.serving.has_initial_state = hi.view();
    ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();
  }
  EXPECT_LT(rel_frobenius(token_rows(out, 0, 0, T), whole.out), kTol);
  EXPECT_LT(rel_frobenius(read_slot(pool, 2, false, c), whole.state), kTol);
}

// Speculative decoding: T_s draft tokens per sequence, the state after each stored to its own
// slot, then a second step resuming from the slot that num_accepted_tokens names (1..T_s).
TEST_P(Serving, SpeculativeEveryAcceptanceCount) {
  const int64_t Ts = 4, N = 3, slots = N * Ts + 1;
  for (bool varlen : {false, true}) {
    for (int64_t acc = 1; acc <= Ts; ++acc) {
      const std::vector<int64_t> lens = varlen ? std::vector<int64_t>{4, 2, 3}
                                               : std::vector<int64_t>{Ts, Ts, Ts};
      const std::vector<int64_t> cu = cu_from_lengths(lens);
      LinearAttentionCase c = small_case(varlen ? 1 : N, varlen ? cu.back() : Ts, 40 + acc);
      HostTensor pool = make_pool(c, slots, acc % 2 == 0, true, 9);
      const bool vm = acc % 2 == 0;  // value-major pools on every other run
      std::vector<State> model = read_pool(pool, vm, c);
      for (int step = 0; step < 2; ++step) {
        c.seed += 100;
        const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
        HostTensor out = make_output(c, c.B, c.T);
        // Sequence n owns slots n*Ts + t in both steps (vLLM's layout): step 1 reads the state
        // its sequence kept after token num_accepted_tokens-1 of step 0, then overwrites the
        // row. Step 0 does not store the state after token 1 of sequence 0; in step 1 sequence
        // 2 is PAD.
        std::vector<int64_t> slot;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t t = 0; t < Ts; ++t) slot.push_back(n * Ts + t);
        if (step == 0) slot[1] = -1;
        if (step == 1) slot[2 * Ts] = -1;
        std::vector<int64_t> accepted(N, 1);
        if (step == 1)
          for (int64_t n = 0; n < N; ++n) accepted[n] = std::min(acc, lens[n]);
        const HostTensor si = index_tensor(LINATTN_INT32, slot, {N, Ts});
        const HostTensor na = index_tensor(LINATTN_INT64, accepted);
        const HostTensor cu_t = index_tensor(LINATTN_INT64, cu);
        LinearAttentionArgs a = base_args(c, in, out, pool);
        a.serving.state_indices = si.view();
        if (step == 1) a.serving.num_accepted_tokens = na.view();
        if (vm) a.serving.state_layout = LINATTN_STATE_VALUE_MAJOR;
        if (varlen) a.serving.cu_seqlens = cu_t.view();
        ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();

        const std::vector<State> before = model;
        for (int64_t n = 0; n < N; ++n) {
          const int64_t b = varlen ? 0 : n, t0 = varlen ? cu[n] : 0, len = lens[n];
          const std::vector<double> got = token_rows(out, b, t0, len);
          if (slot[n * Ts] < 0) {
            for (double x : got) EXPECT_EQ(x, 0.0) << "PAD sequence " << n;
            continue;
          }
          State s = before[slot[n * Ts + accepted[n] - 1]];
          std::vector<double> want;
          for (int64_t t = 0; t < len; ++t) {  // T single-token oracle steps
            const OracleRun o = oracle_range(c, in64, b, t0 + t, 1, &s);
            s = o.state;
            want.insert(want.end(), o.out.begin(), o.out.end());
            if (slot[n * Ts + t] >= 0) model[slot[n * Ts + t]] = s;
          }
          EXPECT_LT(rel_frobenius(got, want), kTol) << "acc " << acc << " step " << step
                                                    << " seq " << n;
        }
        EXPECT_LT(max_slot_error(read_pool(pool, vm, c), model), kTol)
            << "acc " << acc << " step " << step;
        EXPECT_TRUE(pool.padding_is_nan());
      }
    }
  }
}

// Prefix-cache checkpoints: the state after every `interval` tokens goes to its own slot.
TEST_P(Serving, CheckpointsEveryIntervalTokens) {
  for (bool vm : {false, true}) {
    const std::vector<int64_t> lens{200, 64, 10};
    const std::vector<int64_t> cu = cu_from_lengths(lens);
    const int64_t T = cu.back(), interval = 64, M = 4;
    LinearAttentionCase c = small_case(1, T, 51);
    const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
    HostTensor pool = make_pool(c, 12, vm, true, 10);
    std::vector<State> model = read_pool(pool, vm, c);
    HostTensor out = make_output(c, 1, T);
    const std::vector<int64_t> slot{0, 1, 2};
    const std::vector<int64_t> ck{3, -1, 5, 6, 7, 8, -1, -1, 9, 10, 11, -1};
    const HostTensor cu_t = index_tensor(LINATTN_INT32, cu), si = index_tensor(LINATTN_INT32, slot);
    const HostTensor ci = index_tensor(LINATTN_INT32, ck, {3, M});
    LinearAttentionArgs a = base_args(c, in, out, pool);
    a.serving.cu_seqlens = cu_t.view();
    a.serving.state_indices = si.view();
    a.serving.checkpoint_interval = interval;
    a.serving.checkpoint_indices = ci.view();
    if (vm) a.serving.state_layout = LINATTN_STATE_VALUE_MAJOR;
    ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();
    const std::vector<State> before = model;
    for (int64_t n = 0; n < 3; ++n) {
      for (int64_t j = 1; j <= M && j * interval <= lens[n]; ++j)
        if (ck[n * M + j - 1] >= 0)
          model[ck[n * M + j - 1]] = oracle_range(c, in64, 0, cu[n], j * interval,
                                                  &before[slot[n]]).state;
      const OracleRun o = oracle_range(c, in64, 0, cu[n], lens[n], &before[slot[n]]);
      model[slot[n]] = o.state;
      EXPECT_LT(rel_frobenius(token_rows(out, 0, cu[n], lens[n]), o.out), kTol) << "seq " << n;
    }
    EXPECT_LT(max_slot_error(read_pool(pool, vm, c), model), kTol) << "value-major " << vm;
  }
}

// Dense batch with value-major past/present states (no pool, no varlen).
TEST_P(Serving, ValueMajorDenseStates) {
  LinearAttentionCase c = small_case(2, 37, 61);
  const LinearAttentionInputs in = make_inputs(c), in64 = to_float64(in);
  HostTensor past = make_pool(c, 2, true, true, 11), pres = make_pool(c, 2, true, false, 12);
  pres.poison();
  HostTensor out = make_output(c, 2, c.T);
  LinearAttentionArgs a = base_args(c, in, out, pres);
  a.past_state = past.view();
  a.serving.state_layout = LINATTN_STATE_VALUE_MAJOR;
  ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();
  for (int64_t b = 0; b < 2; ++b) {
    const State s0 = read_slot(past, b, true, c);
    const OracleRun o = oracle_range(c, in64, b, 0, c.T, &s0);
    EXPECT_LT(rel_frobenius(token_rows(out, b, 0, c.T), o.out), kTol);
    EXPECT_LT(rel_frobenius(read_slot(pres, b, true, c), o.state), kTol);
  }
}

// In-call q/k L2 normalisation and gating from raw projections, dense batch and pooled varlen.
TEST_P(Serving, FusedL2NormAndGating) {
  for (bool pooled : {false, true}) {
    const std::vector<int64_t> lens{20, 1, 45};
    const std::vector<int64_t> cu = cu_from_lengths(lens);
    LinearAttentionCase c = pooled ? small_case(1, cu.back(), 71) : small_case(2, 33, 72);
    LinearAttentionInputs raw = make_inputs(c);
    std::mt19937_64 rng(c.seed);
    std::normal_distribution<double> n01(0.0, 1.0);
    for (HostTensor* t : {&raw.query, &raw.key, &raw.decay, &raw.beta})
      t->set_values([&](int64_t) { return 2.0 * n01(rng); });  // raw, unnormalised
    HostTensor A_log(LINATTN_FLOAT32, {c.Hkv}), dt_bias(LINATTN_FLOAT32, {c.Hkv});
    A_log.set_values([&](int64_t) { return std::log(0.5 + std::abs(n01(rng))); });
    dt_bias.set_values([&](int64_t) { return n01(rng); });

    // The test's own pre-processing (float64, then rounded to the float32 activations).
    LinearAttentionInputs pre = raw;
    const double eps = 1e-6;
    for (HostTensor* t : {&pre.query, &pre.key}) {
      std::vector<double> v = t->values();
      for (size_t r = 0; r < v.size(); r += c.dk) {
        double ss = 0;
        for (int i = 0; i < c.dk; ++i) ss += v[r + i] * v[r + i];
        for (int i = 0; i < c.dk; ++i) v[r + i] /= std::sqrt(ss + eps);
      }
      t->set_values([&](int64_t i) { return v[i]; });
    }
    {
      std::vector<double> g = raw.decay.values(), b = raw.beta.values();
      for (size_t i = 0; i < g.size(); ++i) {
        const double x = g[i] + dt_bias.get(i % c.Hkv);
        const double sp = x > 20 ? x : std::log1p(std::exp(x));
        g[i] = -std::exp(A_log.get(i % c.Hkv)) * sp;
        b[i] = 1.0 / (1.0 + std::exp(-b[i]));
      }
      pre.decay.set_values([&](int64_t i) { return g[i]; });
      pre.beta.set_values([&](int64_t i) { return b[i]; });
    }
    const LinearAttentionInputs pre64 = to_float64(pre);

    HostTensor pool = make_pool(c, pooled ? 5 : 2, false, false, 13);
    std::vector<State> model = read_pool(pool, false, c);
    HostTensor out = make_output(c, c.B, c.T);
    const HostTensor cu_t = index_tensor(LINATTN_INT32, cu), si = index_tensor(LINATTN_INT32, {3, 0, 4});
    LinearAttentionArgs a = base_args(c, raw, out, pool);
    a.serving.qk_l2norm = 1;
    a.serving.fused_gating = 1;
    a.serving.A_log = A_log.view();
    a.serving.dt_bias = dt_bias.view();
    if (pooled) {
      a.serving.cu_seqlens = cu_t.view();
      a.serving.state_indices = si.view();
    } else {
      a.past_state = pool.view();  // dense, in place
    }
    ASSERT_TRUE(linear_attention(ctx(), a).ok()) << linattn_last_error();
    const int64_t N = pooled ? 3 : 2;
    const std::vector<State> before = model;
    for (int64_t n = 0; n < N; ++n) {
      const int64_t b = pooled ? 0 : n, t0 = pooled ? cu[n] : 0, len = pooled ? lens[n] : c.T;
      const int64_t s = pooled ? std::vector<int64_t>{3, 0, 4}[n] : n;
      const OracleRun o = oracle_range(c, pre64, b, t0, len, &before[s]);
      model[s] = o.state;
      EXPECT_LT(rel_frobenius(token_rows(out, b, t0, len), o.out), kTol) << "seq " << n;
    }
    EXPECT_LT(max_slot_error(read_pool(pool, false, c), model), kTol);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Serving,
                         ::testing::Values(LINATTN_BACKEND_CPU, LINATTN_BACKEND_REFERENCE),
                         [](const auto& info) { return std::string(backend_label(info.param)); });

}  // namespace
}  // namespace linattn::test::serving
