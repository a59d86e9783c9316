// Serving extensions of CausalConvWithState on the CPU and reference backends: packed
// sequences (the window never mixes tokens of two sequences), conv-state pools with PAD and
// has_initial_state, speculative windows stored per token and resumed from the accepted one.
// Expected values come from dense oracle calls per sequence or per token.
#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

#include "serving_support.hpp"

namespace linattn::test::serving {
namespace {

constexpr double kTol = 1e-5;

CausalConvCase conv_dims(int64_t B, int64_t L, bool cl, uint64_t seed) {
  CausalConvCase c;
  c.B = B;
  c.C = 12;
  c.L = L;
  c.K = 4;
  c.channels_last = cl;
  c.has_past = false;
  c.seed = seed;
  return c;
}

HostTensor conv_output(const CausalConvCase& c) {
  HostTensor o(c.act_dtype, c.channels_last ? std::vector<int64_t>{c.B, c.L, c.C}
                                            : std::vector<int64_t>{c.B, c.C, c.L}, true);
  o.poison();
  return o;
}

CausalConvArgs conv_args(const CausalConvCase& c, const CausalConvInputs& in, const HostTensor& out,
                         const HostTensor& present) {
  CausalConvArgs a = default_causal_conv_args();
  a.activation = LINATTN_ACTIVATION_SILU;
  a.channels_last = c.channels_last;
  a.input = in.input.view();
  a.weight = in.weight.view();
  a.bias = in.bias.view();
  a.output = out.view();
  a.present_state = present.view();
  return a;
}

class ServingConv : public ::testing::TestWithParam<linattn_backend> {
 protected:
  Context& ctx() { return backend_context(GetParam()); }
};

TEST_P(ServingConv, VarlenPoolWithPadAndInitialState) {
  for (bool cl : {false, true}) {
    const std::vector<int64_t> lens{5, 0, 1, 2, 17, 1};
    const std::vector<int64_t> slot{3, 1, -1, 0, 5, 2};
    const std::vector<int64_t> init{1, 1, 1, 1, 0, 1};
    const std::vector<int64_t> cu = cu_from_lengths(lens);
    CausalConvCase c = conv_dims(1, cu.back(), cl, 3);
    const CausalConvInputs in = make_inputs(c), in64 = to_float64(in);
    HostTensor pool = make_conv_pool(c, 6, true, 4);
    std::vector<State> model = read_conv_pool(pool, c);
    HostTensor out = conv_output(c);
    const HostTensor cu_t = index_tensor(LINATTN_INT64, cu), si = index_tensor(LINATTN_INT32, slot);
    const HostTensor hi = index_tensor(LINATTN_INT32, init);
    CausalConvArgs a = conv_args(c, in, out, pool);
    a.serving.cu_seqlens = cu_t.view();
    a.serving.state_indices = si.view();
    a.serving.has_initial_state = hi.view();
    ASSERT_TRUE(causal_conv(ctx(), a).ok()) << linattn_last_error();
    const std::vector<State> before = model;
    for (size_t n = 0; n < lens.size(); ++n) {
      const std::vector<double> got = conv_tokens(out, cl, 0, cu[n], lens[n]);
      if (slot[n] < 0) {
        for (double x : got) EXPECT_EQ(x, 0.0) << "PAD sequence " << n;
        continue;
      }
      const OracleRun o = conv_oracle_range(c, in64, 0, cu[n], lens[n],
                                            init[n] ? &before[slot[n]] : nullptr);
      model[slot[n]] = o.state;
      EXPECT_LT(rel_frobenius(got, o.out), kTol) << "seq " << n;
    }
    for (size_t s = 0; s < model.size(); ++s)
      EXPECT_LT(rel_frobenius(read_conv_slot(pool, s, c), model[s]), kTol) << "slot " << s;
    EXPECT_TRUE(pool.padding_is_nan());
    EXPECT_TRUE(out.padding_is_nan());
  }
}

// The CPU runs the sequences of a call (not speculative) as one batched kernel call
// (src/cpu/serving_rows.hpp). Channels last, k = 4, float32 and unpadded (C, 3) state rows, so
// the decode rows take the k = 4 decode kernel, here over two channel blocks (C = 2088 > 2048),
// next to a prefill row and a zero-length row on the general kernel, a PAD in the middle and a
// row starting from zeros; slots read in place or from other slots (read_state_indices); the
// slot stride is padded by one channel row, which must stay untouched; 1, 2 and 3 threads.
TEST_P(ServingConv, BatchedRowsDecodeKernelAndPrefill) {
  const std::vector<int64_t> lens{1, 1, 0, 1, 6, 1};
  const std::vector<int64_t> slot{4, -1, 2, 0, 5, 3};
  const std::vector<int64_t> rd{1, 0, 6, 0, 5, 1};  // never a slot another sequence writes
  const std::vector<int64_t> init{1, 1, 1, 1, 1, 0};
  const std::vector<int64_t> cu = cu_from_lengths(lens);
  const int64_t slots = 7;
  for (int threads : {1, 2, 3}) {
    if (GetParam() == LINATTN_BACKEND_REFERENCE && threads != 2) continue;
    Context& cx = GetParam() == LINATTN_BACKEND_REFERENCE ? ctx() : cpu_context(threads);
    for (bool read_other : {false, true}) {
      CausalConvCase c = conv_dims(1, cu.back(), true, 7 + threads);
      c.C = 2088;
      const CausalConvInputs in = make_inputs(c), in64 = to_float64(in);
      CausalConvCase wide = c;
      wide.C = c.C + 1;  // one extra channel row per slot: the padding of the slot stride
      HostTensor pool = make_conv_pool(wide, slots, false, 8);
      const std::vector<State> start = read_conv_pool(pool, c);
      const std::vector<double> all_before = pool.values();
      HostTensor out = conv_output(c);
      const HostTensor cu_t = index_tensor(LINATTN_INT32, cu), si = index_tensor(LINATTN_INT64, slot);
      const HostTensor ri = index_tensor(LINATTN_INT64, rd), hi = index_tensor(LINATTN_INT32, init);
      CausalConvArgs a = conv_args(c, in, out, pool);
      a.present_state = slice_view(pool.view(), 1, 0, c.C);
      a.serving.cu_seqlens = cu_t.view();
      a.serving.state_indices = si.view();
      a.serving.has_initial_state = hi.view();
      if (read_other) a.serving.read_state_indices = ri.view();
      ASSERT_TRUE(causal_conv(cx, a).ok()) << linattn_last_error();
      std::vector<State> model = start;
      for (size_t n = 0; n < lens.size(); ++n) {
        const std::vector<double> got = conv_tokens(out, true, 0, cu[n], lens[n]);
        if (slot[n] < 0) {
          for (double x : got) EXPECT_EQ(x, 0.0) << "PAD sequence " << n;
          continue;
        }
        const int64_t r = read_other ? rd[n] : slot[n];
        const OracleRun o = conv_oracle_range(c, in64, 0, cu[n], lens[n],
                                              init[n] ? &start[r] : nullptr);
        model[slot[n]] = o.state;
        EXPECT_LT(rel_frobenius(got, o.out), kTol) << "seq " << n << ", threads " << threads;
      }
      const std::vector<State> got = read_conv_pool(pool, c);
      for (int64_t s = 0; s < slots; ++s) {
        if (std::find(slot.begin(), slot.end(), s) == slot.end()) {
          EXPECT_EQ(got[s], start[s]) << "slot " << s << " is written by no sequence";
        } else {
          EXPECT_LT(rel_frobenius(got[s], model[s]), kTol) << "slot " << s;
        }
      }
      const std::vector<double> all = pool.values();
      const auto& st = pool.strides();
      for (int64_t s = 0; s < slots; ++s)
        for (int64_t j = 0; j < c.K - 1; ++j) {
          const int64_t e = s * st[0] + c.C * st[1] + j;
          EXPECT_EQ(all[e], all_before[e]) << "the padding row of slot " << s << " was written";
        }
      EXPECT_TRUE(out.padding_is_nan());
    }
  }
}

TEST_P(ServingConv, VarlenRowsNeverMixSequences) {
  const std::vector<int64_t> lens{3, 1, 9};
  const std::vector<int64_t> cu = cu_from_lengths(lens);
  CausalConvCase c = conv_dims(1, cu.back(), false, 5);
  const CausalConvInputs in = make_inputs(c), in64 = to_float64(in);
  HostTensor pres(c.state_dtype, {3, c.C, c.K - 1});
  pres.poison();
  HostTensor out = conv_output(c);
  const HostTensor cu_t = index_tensor(LINATTN_INT32, cu);
  CausalConvArgs a = conv_args(c, in, out, pres);
  a.serving.cu_seqlens = cu_t.view();
  ASSERT_TRUE(causal_conv(ctx(), a).ok()) << linattn_last_error();
  for (size_t n = 0; n < lens.size(); ++n) {
    const OracleRun o = conv_oracle_range(c, in64, 0, cu[n], lens[n], nullptr);
    EXPECT_LT(rel_frobenius(conv_tokens(out, false, 0, cu[n], lens[n]), o.out), kTol);
    EXPECT_LT(rel_frobenius(read_conv_slot(pres, n, c), o.state), kTol);
  }
}

// Speculative: the window after every draft token stored to its slot; the next step resumes
// from the window after token num_accepted_tokens-1.
TEST_P(ServingConv, SpeculativeWindowsEveryAcceptanceCount) {
  const int64_t Ts = 3, N = 2;
  for (int64_t acc = 1; acc <= Ts; ++acc) {
    CausalConvCase c = conv_dims(N, Ts, acc % 2 == 1, 20 + acc);
    HostTensor pool = make_conv_pool(c, N * Ts, false, 6);
    std::vector<State> model = read_conv_pool(pool, c);
    for (int step = 0; step < 2; ++step) {
      c.seed += 10;
      const CausalConvInputs in = make_inputs(c), in64 = to_float64(in);
      HostTensor out = conv_output(c);
      std::vector<int64_t> slot;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t t = 0; t < Ts; ++t) slot.push_back(n * Ts + t);
      const std::vector<int64_t> accepted{step ? acc : 1, step ? Ts + 1 - acc : 1};
      const HostTensor si = index_tensor(LINATTN_INT64, slot, {N, Ts});
      const HostTensor na = index_tensor(LINATTN_INT32, accepted);
      CausalConvArgs a = conv_args(c, in, out, pool);
      a.serving.state_indices = si.view();
      a.serving.num_accepted_tokens = na.view();
      ASSERT_TRUE(causal_conv(ctx(), a).ok()) << linattn_last_error();
      const std::vector<State> before = model;
      for (int64_t n = 0; n < N; ++n) {
        State s = before[slot[n * Ts + accepted[n] - 1]];
        std::vector<double> want;
        for (int64_t t = 0; t < Ts; ++t) {
          const OracleRun o = conv_oracle_range(c, in64, n, t, 1, &s);
          s = o.state;
          want.insert(want.end(), o.out.begin(), o.out.end());
          model[slot[n * Ts + t]] = s;
        }
        EXPECT_LT(rel_frobenius(conv_tokens(out, c.channels_last, n, 0, Ts), want), kTol);
      }
      for (size_t s = 0; s < model.size(); ++s)
        EXPECT_LT(rel_frobenius(read_conv_slot(pool, s, c), model[s]), kTol) << "slot " << s;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ServingConv,
                         ::testing::Values(LINATTN_BACKEND_CPU, LINATTN_BACKEND_REFERENCE),
                         [](const auto& info) { return std::string(backend_label(info.param)); });

}  // namespace
}  // namespace linattn::test::serving
