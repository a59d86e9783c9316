// Bad serving calls: every index rule reports INVALID_ARGUMENT with a message naming the field,
// the sequence and the value, and nothing is written (outputs stay poisoned, the pool keeps
// every byte, the error flag keeps its value). Also: the dense path is unchanged when every
// serving field is zero, and a good call sets error_flag to 0.
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "serving_support.hpp"

namespace linattn::test::serving {
namespace {

struct Fixture {
  LinearAttentionCase c;
  LinearAttentionInputs in;
  HostTensor out, pool, cu, slots, flag;
  LinearAttentionArgs a;

  Fixture() {
    c.B = 1;
    c.T = 7;
    c.Hq = c.Hk = 2;
    c.Hkv = 2;
    c.dk = c.dv = 8;
    c.has_past = false;
    in = make_inputs(c);
    out = HostTensor(LINATTN_FLOAT32, {1, 7, 16});
    out.poison();
    pool = make_pool(c, 4, false, true, 3);
    cu = index_tensor(LINATTN_INT32, {0, 3, 3, 7});
    slots = index_tensor(LINATTN_INT32, {1, -1, 2});
    flag = index_tensor(LINATTN_INT32, {77});
    a = default_linear_attention_args();
    a.q_num_heads = a.kv_num_heads = 2;
    a.query = in.query.view();
    a.key = in.key.view();
    a.value = in.value.view();
    a.decay = in.decay.view();
    a.beta = in.beta.view();
    a.output = out.view();
    a.present_state = pool.view();
    a.serving.cu_seqlens = cu.view();
    a.serving.state_indices = slots.view();
    a.serving.error_flag = flag.view();
  }

  // Runs a (expected to fail with INVALID_ARGUMENT) and checks that nothing was written.
  void expect_rejected(const std::vector<std::string>& words) {
    std::vector<uint64_t> pool_bytes(pool.storage_bytes() / 8 + 1, 0);
    std::memcpy(pool_bytes.data(), pool.data(), pool.storage_bytes());
    Status s = linear_attention(cpu_context(1), a);
    EXPECT_EQ(s.code(), LINATTN_ERROR_INVALID_ARGUMENT) << s.to_string();
    for (const std::string& w : words)
      EXPECT_NE(s.message().find(w), std::string::npos) << "'" << w << "' not in: " << s.message();
    EXPECT_EQ(out.count_nan(), out.numel()) << "output was written";
    EXPECT_EQ(std::memcmp(pool_bytes.data(), pool.data(), pool.storage_bytes()), 0)
        << "the pool was written";
    EXPECT_EQ(static_cast<const int32_t*>(flag.data())[0], 77) << "error_flag was written";
    Status q = supports(cpu_context(1), a);
    EXPECT_EQ(q.code(), LINATTN_ERROR_INVALID_ARGUMENT) << "supports() disagrees";
  }
};

TEST(ServingErrors, GoodCallSetsErrorFlagToZero) {
  Fixture f;
  ASSERT_TRUE(linear_attention(cpu_context(1), f.a).ok()) << linattn_last_error();
  EXPECT_EQ(static_cast<const int32_t*>(f.flag.data())[0], 0);
}

TEST(ServingErrors, OutOfRangeSlotNamesSequenceAndValue) {
  Fixture f;
  f.slots = index_tensor(LINATTN_INT32, {1, -1, 4});
  f.a.serving.state_indices = f.slots.view();
  f.expect_rejected({"serving.state_indices[2] = 4", "sequence 2", "4 slots"});
  f.slots = index_tensor(LINATTN_INT64, {-2, 0, 1});
  f.a.serving.state_indices = f.slots.view();
  f.expect_rejected({"serving.state_indices[0] = -2", "sequence 0"});
}

TEST(ServingErrors, OutOfRangeReadSlot) {
  Fixture f;
  HostTensor rd = index_tensor(LINATTN_INT32, {0, 0, 9});
  f.a.serving.read_state_indices = rd.view();
  f.expect_rejected({"serving.read_state_indices[2] = 9", "sequence 2"});
}

TEST(ServingErrors, BadCuSeqlens) {
  Fixture f;
  f.cu = index_tensor(LINATTN_INT32, {0, 3, 2, 7});
  f.a.serving.cu_seqlens = f.cu.view();
  f.expect_rejected({"serving.cu_seqlens[2] = 2", "non-decreasing"});
  f.cu = index_tensor(LINATTN_INT32, {0, 3, 3, 6});
  f.a.serving.cu_seqlens = f.cu.view();
  f.expect_rejected({"serving.cu_seqlens[3] = 6", "T = 7"});
  f.cu = index_tensor(LINATTN_INT32, {0, 3, 7});
  f.a.serving.cu_seqlens = f.cu.view();
  f.expect_rejected({"serving.state_indices", "(N=2)"});
}

TEST(ServingErrors, SpeculativeRules) {
  Fixture f;
  f.slots = index_tensor(LINATTN_INT32, {0, 1, -1, -1, 2, 3}, {3, 2});
  f.a.serving.state_indices = f.slots.view();
  f.expect_rejected({"sequence 0 has 3 tokens", "T_s = 2"});
  f.cu = index_tensor(LINATTN_INT32, {0, 2, 2, 4});
  f.a.serving.cu_seqlens = f.cu.view();
  for (linattn_tensor* v : {&f.a.query, &f.a.key, &f.a.value, &f.a.decay, &f.a.beta, &f.a.output})
    *v = slice_view(*v, 1, 0, 4);
  HostTensor na = index_tensor(LINATTN_INT32, {1, 1, 3});
  f.a.serving.num_accepted_tokens = na.view();
  f.expect_rejected({"serving.num_accepted_tokens[2] = 3", "1..T_s = 1..2"});
  na = index_tensor(LINATTN_INT32, {0, 1, 1});
  f.a.serving.num_accepted_tokens = na.view();
  f.expect_rejected({"serving.num_accepted_tokens[0] = 0"});
  HostTensor rd = index_tensor(LINATTN_INT32, {0, 0, 0});
  f.a.serving.num_accepted_tokens = absent();
  f.a.serving.read_state_indices = rd.view();
  f.expect_rejected({"read_state_indices", "not speculative"});
}

TEST(ServingErrors, CheckpointRules) {
  Fixture f;
  HostTensor ck = index_tensor(LINATTN_INT32, {0, 0, 0}, {3, 1});
  f.a.serving.checkpoint_indices = ck.view();
  f.a.serving.checkpoint_interval = 48;
  f.expect_rejected({"checkpoint_interval is 48", "multiple of the chunk size 64"});
  f.a.serving.checkpoint_interval = 64;
  ck = index_tensor(LINATTN_INT32, {0, 0, 5}, {3, 1});
  f.a.serving.checkpoint_indices = ck.view();
  f.expect_rejected({"serving.checkpoint_indices[2, 0] = 5", "sequence 2"});
}

TEST(ServingErrors, ShapesAndTypes) {
  Fixture f;
  HostTensor f32 = HostTensor(LINATTN_FLOAT32, {3});
  f.a.serving.state_indices = f32.view();
  f.expect_rejected({"serving.state_indices has dtype float32", "int32 or int64"});
  f.a.serving.state_indices = f.slots.view();
  HostTensor small(LINATTN_FLOAT32, {4, 2, 8, 4});
  f.a.present_state = small.view();
  f.expect_rejected({"present_state has shape (4, 2, 8, 4)", "slots", "state pool"});
  f.a.present_state = f.pool.view();
  f.a.serving.state_layout = static_cast<linattn_state_layout>(5);
  f.expect_rejected({"state_layout has unknown value 5"});
  f.a.serving.state_layout = LINATTN_STATE_KEY_MAJOR;
  f.a.serving.fused_gating = 1;
  f.expect_rejected({"fused_gating needs serving.A_log"});
  f.a.serving.fused_gating = 0;
  f.a.serving.error_flag = f.cu.view();  // overlaps an index input
  f.a.serving.error_flag = slice_view(f.a.serving.error_flag, 0, 0, 1);
  f.expect_rejected({"serving.error_flag overlaps"});
}

TEST(ServingErrors, ConvRejectsAttentionOnlyFieldsAndBadSlots) {
  CausalConvCase c;
  c.B = 2;
  c.L = 3;
  c.has_past = false;
  const CausalConvInputs in = make_inputs(c);
  HostTensor out(LINATTN_FLOAT32, {2, c.C, 3});
  out.poison();
  HostTensor pool = make_conv_pool(c, 2, false, 1);
  HostTensor si = index_tensor(LINATTN_INT32, {0, 2});
  CausalConvArgs a = default_causal_conv_args();
  a.input = in.input.view();
  a.weight = in.weight.view();
  a.output = out.view();
  a.present_state = pool.view();
  a.serving.state_indices = si.view();
  const std::vector<double> before = pool.values();
  Status s = causal_conv(cpu_context(1), a);
  EXPECT_EQ(s.code(), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("serving.state_indices[1] = 2 (sequence 1)"), std::string::npos)
      << s.message();
  EXPECT_EQ(out.count_nan(), out.numel());
  EXPECT_EQ(pool.values(), before);
  si = index_tensor(LINATTN_INT32, {0, 1});
  a.serving.state_indices = si.view();
  a.serving.qk_l2norm = 1;
  s = causal_conv(cpu_context(1), a);
  EXPECT_EQ(s.code(), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(s.message().find("LinearAttention-only serving field"), std::string::npos);
}

}  // namespace
}  // namespace linattn::test::serving
