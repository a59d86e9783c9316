// One test per validation rule of SEMANTICS.md. Each failing call must return the right status,
// name the offending input (and, for shape errors, print its actual shape), and leave every
// buffer it was given byte for byte as it was: outputs keep their poison pattern.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

#include "core/check.hpp"
#include "linattn/linattn.h"

namespace {

using linattn::detail::CausalConvParams;
using linattn::detail::LinearAttentionParams;

constexpr unsigned char kPoison = 0xA5;

// Storage of 8 bytes per element so a view of any dtype fits.
using Storage = std::vector<double>;

linattn_tensor view(Storage& s, std::initializer_list<int64_t> shape,
                    linattn_dtype dt = LINATTN_FLOAT32) {
  int64_t dims[LINATTN_MAX_RANK] = {0, 0, 0, 0};
  int32_t r = 0;
  for (int64_t d : shape) dims[r++] = d;
  int64_t n = 1;
  for (int i = 0; i < r; ++i) n *= dims[i];
  s.assign(static_cast<size_t>(n > 0 ? n : 1), 0.0);
  return linattn_tensor_contiguous(s.data(), dt, LINATTN_MEMORY_HOST, r, dims);
}

void fill_inputs(Storage& s, float base) {
  // Small distinct float32 values in the first 4 bytes of each slot, as f32 views read them.
  float* f = reinterpret_cast<float*>(s.data());
  for (size_t i = 0; i < s.size() * 2; ++i) f[i] = base + 0.01f * static_cast<float>(i % 97);
}

void poison(Storage& s) { std::memset(s.data(), kPoison, s.size() * sizeof(double)); }

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class Harness : public ::testing::Test {
 protected:
  void SetUp() override {
    linattn_context_options o = linattn_context_default_options();
    o.backend = LINATTN_BACKEND_CPU;
    o.num_threads = 1;
    ASSERT_EQ(linattn_context_create(&o, &ctx_), LINATTN_OK) << linattn_last_error();
  }
  void TearDown() override { linattn_context_destroy(ctx_); }

  // Snapshot of every buffer, to prove a failed call wrote nothing anywhere.
  std::vector<Storage> snapshot() const {
    std::vector<Storage> s;
    for (const Storage* b : buffers_) s.push_back(*b);
    return s;
  }
  void expect_untouched(const std::vector<Storage>& before) const {
    for (size_t i = 0; i < buffers_.size(); ++i) {
      EXPECT_EQ(0, std::memcmp(before[i].data(), buffers_[i]->data(),
                               before[i].size() * sizeof(double)))
          << "buffer " << i << " was written by a call that failed";
    }
  }

  linattn_context* ctx_ = nullptr;
  std::vector<Storage*> buffers_;
};

// ---------------------------------------------------------------------------------------------
// LinearAttention
// ---------------------------------------------------------------------------------------------

class LinearAttentionValidation : public Harness {
 protected:
  void SetUp() override {
    Harness::SetUp();
    buffers_ = {&q_, &k_, &v_, &past_, &decay_, &beta_, &out_, &pres_};
    make(2, 3, 2, 2, 2, 4, 3);
  }

  // A valid gated_delta case: B, T, H_q, H_kv, n_k, d_k, d_v; float32, contiguous, with past
  // state, per-head decay and beta.
  void make(int64_t B, int64_t T, int Hq, int Hkv, int nk, int64_t dk, int64_t dv) {
    a_ = linattn_linear_attention_args{};
    a_.q_num_heads = Hq;
    a_.kv_num_heads = Hkv;
    a_.update_rule = LINATTN_RULE_GATED_DELTA;
    a_.query = view(q_, {B, T, Hq * dk});
    a_.key = view(k_, {B, T, nk * dk});
    a_.value = view(v_, {B, T, Hkv * dv});
    a_.past_state = view(past_, {B, Hkv, dk, dv});
    a_.decay = view(decay_, {B, T, Hkv});
    a_.beta = view(beta_, {B, T, Hkv});
    a_.output = view(out_, {B, T, (Hq > Hkv ? Hq : Hkv) * dv});
    a_.present_state = view(pres_, {B, Hkv, dk, dv});
    fill_inputs(q_, 0.1f);
    fill_inputs(k_, 0.2f);
    fill_inputs(v_, 0.3f);
    fill_inputs(past_, 0.4f);
    fill_inputs(decay_, -0.5f);
    fill_inputs(beta_, 0.5f);
    poison(out_);
    poison(pres_);
  }

  // Replaces the tensor with a fresh buffer of a new shape (poisoned when it is an output).
  void reshape(linattn_tensor& t, Storage& s, std::initializer_list<int64_t> shape) {
    const linattn_dtype dt = t.dtype;
    t = view(s, shape, dt);
    if (&s == &out_ || &s == &pres_) poison(s);
  }

  // The call fails with `code`, its message holds every needle, and no buffer changed. The
  // capability query (validation only) agrees.
  void expect_error(linattn_status code, std::initializer_list<std::string> needles) {
    const auto before = snapshot();
    const linattn_status s = linattn_linear_attention(ctx_, &a_);
    const std::string msg = linattn_last_error();
    RecordProperty("message", msg);  // visible with --gtest_output=xml, for reviewing wording
    EXPECT_EQ(s, code) << linattn_status_name(s) << ": " << msg;
    for (const std::string& n : needles) EXPECT_TRUE(contains(msg, n)) << "'" << n << "' not in: " << msg;
    expect_untouched(before);
    EXPECT_EQ(linattn_linear_attention_supports(ctx_, &a_), code);
    EXPECT_EQ(msg, linattn_last_error());
  }

  // Validation accepts the args; returns the params it built.
  LinearAttentionParams expect_valid() {
    LinearAttentionParams p;
    const auto st = linattn::detail::check_linear_attention(a_, LINATTN_BACKEND_CPU, &p);
    EXPECT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(linattn_linear_attention_supports(ctx_, &a_), LINATTN_OK) << linattn_last_error();
    return p;
  }

  Storage q_, k_, v_, past_, decay_, beta_, out_, pres_;
  linattn_linear_attention_args a_{};
};

TEST_F(LinearAttentionValidation, BaseCaseIsValidAndParamsAreComplete) {
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.B, 2);
  EXPECT_EQ(p.T, 3);
  EXPECT_EQ(p.Hq, 2);
  EXPECT_EQ(p.Hk, 2);
  EXPECT_EQ(p.Hkv, 2);
  EXPECT_EQ(p.Hout, 2);
  EXPECT_EQ(p.dk, 4);
  EXPECT_EQ(p.dv, 3);
  EXPECT_TRUE(p.gated);
  EXPECT_TRUE(p.delta);
  EXPECT_FLOAT_EQ(p.scale, 0.5f);  // 1/sqrt(4)
  EXPECT_EQ(p.chunk_size, 64);
  EXPECT_FALSE(p.decay_per_key_dim);
  EXPECT_FALSE(p.beta_shared);
  EXPECT_EQ(p.q, a_.query.data);
  EXPECT_EQ(p.q_sb, 24);
  EXPECT_EQ(p.q_st, 8);
  EXPECT_EQ(p.v_sb, 18);
  EXPECT_EQ(p.v_st, 6);
  EXPECT_EQ(p.g_sb, 6);
  EXPECT_EQ(p.g_st, 2);
  EXPECT_EQ(p.beta_sb, 6);
  EXPECT_EQ(p.o_st, 6);
  EXPECT_EQ(p.past, a_.past_state.data);
  EXPECT_EQ(p.past_sb, 24);
  EXPECT_EQ(p.past_sh, 12);
  EXPECT_EQ(p.past_sk, 3);
  EXPECT_EQ(p.present, a_.present_state.data);
  EXPECT_EQ(p.pres_sk, 3);
  EXPECT_FALSE(p.in_place);
}

TEST_F(LinearAttentionValidation, ExplicitScaleAndChunkSizePassThrough) {
  a_.scale = 0.25f;
  a_.chunk_size = 32;
  const LinearAttentionParams p = expect_valid();
  EXPECT_FLOAT_EQ(p.scale, 0.25f);
  EXPECT_EQ(p.chunk_size, 32);
}

TEST_F(LinearAttentionValidation, QueryAbsent) {
  a_.query = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "required"});
}

TEST_F(LinearAttentionValidation, QueryWrongRank) {
  reshape(a_.query, q_, {2, 24});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "(2, 24)", "rank 3"});
}

TEST_F(LinearAttentionValidation, KeyWrongRank) {
  reshape(a_.key, k_, {2, 3, 2, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"key", "(2, 3, 2, 4)"});
}

TEST_F(LinearAttentionValidation, ValueWrongRank) {
  reshape(a_.value, v_, {18});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "(18)"});
}

TEST_F(LinearAttentionValidation, PastStateWrongRank) {
  reshape(a_.past_state, past_, {2, 2, 12});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"past_state", "(2, 2, 12)"});
}

TEST_F(LinearAttentionValidation, DecayWrongRank) {
  reshape(a_.decay, decay_, {2, 3, 2, 1});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "(2, 3, 2, 1)"});
}

TEST_F(LinearAttentionValidation, BetaWrongRank) {
  reshape(a_.beta, beta_, {6, 2});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "(6, 2)"});
}

TEST_F(LinearAttentionValidation, OutputWrongRank) {
  reshape(a_.output, out_, {2, 3, 2, 3});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "(2, 3, 2, 3)"});
}

TEST_F(LinearAttentionValidation, OutputAbsent) {
  a_.output = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "required"});
}

TEST_F(LinearAttentionValidation, PresentStateAbsent) {
  a_.present_state = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "required"});
}

TEST_F(LinearAttentionValidation, RankOutOfRange) {
  a_.value.rank = 5;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "rank 5"});
  a_.value.rank = -2;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "rank -2"});
}

TEST_F(LinearAttentionValidation, NegativeDimension) {
  a_.key.shape[1] = -3;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"key", "(2, -3, 8)", "negative"});
}

TEST_F(LinearAttentionValidation, QueryWidthNotMultipleOfHeads) {
  reshape(a_.query, q_, {2, 3, 7});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "(2, 3, 7)", "q_num_heads=2"});
}

TEST_F(LinearAttentionValidation, QueryWidthZero) {
  reshape(a_.query, q_, {2, 3, 0});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "(2, 3, 0)"});
}

TEST_F(LinearAttentionValidation, ValueWidthNotMultipleOfKvHeads) {
  reshape(a_.value, v_, {2, 3, 5});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "(2, 3, 5)", "kv_num_heads=2"});
}

TEST_F(LinearAttentionValidation, KeyWidthNotMultipleOfHeadSize) {
  make(2, 5, 4, 4, 4, 16, 8);
  reshape(a_.key, k_, {2, 5, 30});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT,
               {"LinearAttention: key has shape (2, 5, 30); expected (B=2, T=5, n_k*d_k) with "
                "d_k=16 (query.shape[2]=64 / q_num_heads=4), and 30 is not a"});
}

TEST_F(LinearAttentionValidation, BatchMismatch) {
  reshape(a_.key, k_, {1, 3, 8});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"key", "(1, 3, 8)", "B=2"});
}

TEST_F(LinearAttentionValidation, SequenceLengthMismatch) {
  reshape(a_.value, v_, {2, 4, 6});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "(2, 4, 6)", "T=3"});
}

TEST_F(LinearAttentionValidation, DecayBatchOrLengthMismatch) {
  reshape(a_.decay, decay_, {2, 2, 2});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "(2, 2, 2)", "T=3"});
}

TEST_F(LinearAttentionValidation, BetaBatchMismatch) {
  reshape(a_.beta, beta_, {3, 3, 2});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "(3, 3, 2)", "B=2"});
}

TEST_F(LinearAttentionValidation, OutputLengthMismatch) {
  reshape(a_.output, out_, {2, 1, 6});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "(2, 1, 6)"});
}

TEST_F(LinearAttentionValidation, QueryHeadsZero) {
  a_.q_num_heads = 0;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"q_num_heads=0", ">= 1"});
}

TEST_F(LinearAttentionValidation, KvHeadsNegative) {
  a_.kv_num_heads = -2;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"kv_num_heads=-2"});
}

TEST_F(LinearAttentionValidation, HeadCountsDoNotDivide) {
  make(1, 2, 3, 2, 2, 4, 3);  // H_q = 3, H_kv = 2
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"q_num_heads=3", "kv_num_heads=2", "divide"});
}

TEST_F(LinearAttentionValidation, KeyHeadsDoNotDivideKvHeads) {
  make(1, 2, 4, 4, 3, 4, 3);  // n_k = 3 key heads, H_kv = 4
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"key", "(1, 2, 12)", "n_k=3"});
}

TEST_F(LinearAttentionValidation, GqaInverseGqaAndKeySharingAreValid) {
  make(1, 2, 4, 2, 2, 4, 3);  // GQA: output has H_q heads
  LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.Hout, 4);
  EXPECT_EQ(p.q_per_kv(), 2);
  make(1, 2, 2, 4, 2, 4, 3);  // inverse GQA: output has H_kv heads
  p = expect_valid();
  EXPECT_EQ(p.Hout, 4);
  make(1, 2, 4, 4, 1, 4, 3);  // key sharing: one key head for four kv heads
  p = expect_valid();
  EXPECT_EQ(p.Hk, 1);
  EXPECT_EQ(p.key_head(3), 0);
}

TEST_F(LinearAttentionValidation, OutputHeadsMustBeMaxOfHeadCounts) {
  make(1, 2, 2, 4, 2, 4, 3);  // inverse GQA: output needs 4*3 columns
  reshape(a_.output, out_, {1, 2, 6});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "(1, 2, 6)", "=12"});
}

TEST_F(LinearAttentionValidation, DecayBadLastDim) {
  reshape(a_.decay, decay_, {2, 3, 5});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "(2, 3, 5)", "H_kv*d_k=8"});
}

TEST_F(LinearAttentionValidation, DecayPerKeyDimIsAccepted) {
  reshape(a_.decay, decay_, {2, 3, 8});
  const LinearAttentionParams p = expect_valid();
  EXPECT_TRUE(p.decay_per_key_dim);
  EXPECT_EQ(p.g_st, 8);
}

TEST_F(LinearAttentionValidation, DecayWithHeadSizeOneIsPerKeyDim) {
  make(1, 2, 2, 2, 2, 1, 3);  // d_k = 1: H_kv == H_kv*d_k
  const LinearAttentionParams p = expect_valid();
  EXPECT_TRUE(p.decay_per_key_dim);
}

TEST_F(LinearAttentionValidation, BetaBadLastDim) {
  reshape(a_.beta, beta_, {2, 3, 3});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "(2, 3, 3)", "H_kv=2"});
}

TEST_F(LinearAttentionValidation, BetaSharedIsAccepted) {
  reshape(a_.beta, beta_, {2, 3, 1});
  const LinearAttentionParams p = expect_valid();
  EXPECT_TRUE(p.beta_shared);
  EXPECT_EQ(p.beta_st, 1);
}

TEST_F(LinearAttentionValidation, GatedRuleNeedsDecay) {
  a_.update_rule = LINATTN_RULE_GATED;
  a_.decay = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "required", "gated"});
}

TEST_F(LinearAttentionValidation, GatedDeltaRuleNeedsDecay) {
  a_.decay = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "gated_delta"});
}

TEST_F(LinearAttentionValidation, DeltaRuleNeedsBeta) {
  a_.update_rule = LINATTN_RULE_DELTA;
  a_.beta = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "required", "delta"});
}

TEST_F(LinearAttentionValidation, UnusedInputsAreIgnoredByDefault) {
  a_.update_rule = LINATTN_RULE_LINEAR;
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.decay, nullptr);
  EXPECT_EQ(p.beta, nullptr);
  EXPECT_FALSE(p.gated);
  EXPECT_FALSE(p.delta);
}

TEST_F(LinearAttentionValidation, UnusedDecayStillHasItsShapeChecked) {
  a_.update_rule = LINATTN_RULE_DELTA;
  reshape(a_.decay, decay_, {2, 3, 5});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "(2, 3, 5)"});
}

TEST_F(LinearAttentionValidation, UnusedBetaStillHasItsShapeChecked) {
  a_.update_rule = LINATTN_RULE_GATED;
  reshape(a_.beta, beta_, {2, 1, 2});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "(2, 1, 2)"});
}

TEST_F(LinearAttentionValidation, StrictModeRejectsUnusedDecay) {
  a_.update_rule = LINATTN_RULE_DELTA;
  a_.strict = 1;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"decay", "(2, 3, 2)", "strict", "delta"});
}

TEST_F(LinearAttentionValidation, StrictModeRejectsUnusedBeta) {
  a_.update_rule = LINATTN_RULE_GATED;
  a_.strict = 1;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "(2, 3, 2)", "strict"});
}

TEST_F(LinearAttentionValidation, StrictModeAcceptsTheInputsARuleUses) {
  a_.strict = 1;
  expect_valid();
}

TEST_F(LinearAttentionValidation, PastStateBadShape) {
  reshape(a_.past_state, past_, {2, 2, 3, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"past_state", "(2, 2, 3, 4)", "d_k=4, d_v=3"});
}

TEST_F(LinearAttentionValidation, PresentStateBadShape) {
  reshape(a_.present_state, pres_, {2, 1, 4, 3});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "(2, 1, 4, 3)", "H_kv=2"});
}

TEST_F(LinearAttentionValidation, PastStateIsOptional) {
  a_.past_state = linattn_tensor_absent();
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.past, nullptr);
}

TEST_F(LinearAttentionValidation, UnknownUpdateRule) {
  a_.update_rule = static_cast<linattn_update_rule>(7);
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"update_rule", "7"});
}

TEST_F(LinearAttentionValidation, ScaleNotFinite) {
  a_.scale = std::numeric_limits<float>::quiet_NaN();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"scale", "finite"});
  a_.scale = std::numeric_limits<float>::infinity();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"scale", "finite"});
}

TEST_F(LinearAttentionValidation, NegativeChunkSize) {
  a_.chunk_size = -64;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"chunk_size", "-64"});
}

TEST_F(LinearAttentionValidation, ActivationDtypesMustMatch) {
  a_.key.dtype = LINATTN_FLOAT16;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"key", "float16", "query", "float32"});
}

TEST_F(LinearAttentionValidation, OutputDtypeMustMatchActivations) {
  a_.output.dtype = LINATTN_BFLOAT16;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "bfloat16"});
}

TEST_F(LinearAttentionValidation, IntegerActivationsRejected) {
  for (linattn_tensor* t : {&a_.query, &a_.key, &a_.value, &a_.decay, &a_.beta, &a_.output}) {
    t->dtype = LINATTN_INT32;
  }
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "int32"});
}

TEST_F(LinearAttentionValidation, Float64OnlyOnTheReferenceBackend) {
  for (linattn_tensor* t : {&a_.query, &a_.key, &a_.value, &a_.decay, &a_.beta, &a_.output}) {
    t->dtype = LINATTN_FLOAT64;
  }
  expect_error(LINATTN_ERROR_UNSUPPORTED, {"query", "float64", "reference"});
  LinearAttentionParams p;
  EXPECT_TRUE(linattn::detail::check_linear_attention(a_, LINATTN_BACKEND_REFERENCE, &p).ok());
  EXPECT_EQ(p.act_dtype, LINATTN_FLOAT64);
}

TEST_F(LinearAttentionValidation, StateDtypesAreIndependentOfActivations) {
  a_.past_state.dtype = LINATTN_BFLOAT16;
  a_.present_state.dtype = LINATTN_FLOAT16;
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.past_dtype, LINATTN_BFLOAT16);
  EXPECT_EQ(p.present_dtype, LINATTN_FLOAT16);
  EXPECT_EQ(p.act_dtype, LINATTN_FLOAT32);
}

TEST_F(LinearAttentionValidation, StateDtypeMustBeFloat) {
  a_.present_state.dtype = LINATTN_INT64;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "int64"});
}

TEST_F(LinearAttentionValidation, Float64StateOnCpuIsUnsupported) {
  a_.past_state.dtype = LINATTN_FLOAT64;
  expect_error(LINATTN_ERROR_UNSUPPORTED, {"past_state", "float64"});
}

TEST_F(LinearAttentionValidation, UnknownDtypeValue) {
  a_.beta.dtype = static_cast<linattn_dtype>(42);
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "dtype", "42"});
}

TEST_F(LinearAttentionValidation, HostBackendNeedsHostMemory) {
  a_.value.memory = LINATTN_MEMORY_CUDA;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "cuda memory", "LINATTN_MEMORY_HOST"});
}

TEST_F(LinearAttentionValidation, CudaBackendNeedsDeviceMemory) {
  // Checked directly: a CUDA context may not exist on this machine.
  LinearAttentionParams p;
  const auto st = linattn::detail::check_linear_attention(a_, LINATTN_BACKEND_CUDA, &p);
  EXPECT_EQ(st.code(), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(st.message(), "query")) << st.message();
  EXPECT_TRUE(contains(st.message(), "LINATTN_MEMORY_CUDA")) << st.message();
}

TEST_F(LinearAttentionValidation, UnknownMemorySpace) {
  a_.key.memory = static_cast<linattn_memory>(9);
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"key", "memory", "9"});
}

TEST_F(LinearAttentionValidation, InnermostStrideMustBeOne) {
  a_.query.strides[2] = 2;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "(24, 8, 2)", "innermost"});
}

TEST_F(LinearAttentionValidation, NegativeStride) {
  a_.value.strides[0] = -18;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "(-18, 6, 1)", "negative"});
}

TEST_F(LinearAttentionValidation, BroadcastInputStrideIsAccepted) {
  a_.key.strides[0] = 0;  // the same keys for every batch entry
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.k_sb, 0);
}

TEST_F(LinearAttentionValidation, PaddedStridesArePassedThrough) {
  // q sliced out of a wider fused projection: row stride 20 instead of 8.
  Storage wide;
  a_.query = view(wide, {2, 3, 20});
  buffers_.push_back(&wide);
  a_.query.shape[2] = 8;
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.q_st, 20);
  EXPECT_EQ(p.q_sb, 60);
}

TEST_F(LinearAttentionValidation, NullDataWithElements) {
  a_.beta.data = nullptr;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"beta", "(2, 3, 2)", "null"});
}

TEST_F(LinearAttentionValidation, NullDataWhenEmptyIsAccepted) {
  make(2, 0, 2, 2, 2, 4, 3);  // T = 0: no token-indexed element exists
  for (linattn_tensor* t : {&a_.query, &a_.key, &a_.value, &a_.decay, &a_.beta, &a_.output}) {
    t->data = nullptr;
  }
  const LinearAttentionParams p = expect_valid();
  EXPECT_EQ(p.T, 0);
}

TEST_F(LinearAttentionValidation, ElementCountOverflow) {
  const int64_t big = int64_t{1} << 40;
  a_.query.shape[0] = big;
  a_.query.shape[1] = big;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"query", "overflow"});
}

TEST_F(LinearAttentionValidation, OffsetOverflow) {
  a_.value.strides[0] = std::numeric_limits<int64_t>::max() / 2 + 1;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"value", "overflow"});
}

TEST_F(LinearAttentionValidation, OutputMustNotOverlapItself) {
  a_.output.strides[1] = 0;  // every token writes the same row
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "overlap"});
}

TEST_F(LinearAttentionValidation, PresentStateMustNotOverlapItself) {
  a_.present_state.strides[2] = 2;  // rows of 3 elements at distance 2
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "overlap"});
}

TEST_F(LinearAttentionValidation, OutputMustNotOverlapAnInput) {
  // output (2, 3, 6) written over the first 36 floats of query.
  a_.output.data = a_.query.data;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "overlaps", "query"});
}

TEST_F(LinearAttentionValidation, PresentStateMustNotOverlapAnInput) {
  a_.present_state.data = a_.value.data;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "overlaps", "value"});
}

TEST_F(LinearAttentionValidation, OutputsMustNotOverlapEachOther) {
  a_.output.data = static_cast<char*>(a_.present_state.data) + 8;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "present_state", "overlap"});
}

TEST_F(LinearAttentionValidation, PresentStateMayAliasPastStateExactly) {
  a_.present_state = a_.past_state;
  const LinearAttentionParams p = expect_valid();
  EXPECT_TRUE(p.in_place);
  EXPECT_EQ(p.present, p.past);
}

TEST_F(LinearAttentionValidation, PresentStateMustNotPartlyAliasPastState) {
  a_.present_state = a_.past_state;
  a_.present_state.data = static_cast<float*>(a_.past_state.data) + 1;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "past_state", "exactly"});
}

TEST_F(LinearAttentionValidation, PresentStateAliasNeedsTheSameDtype) {
  a_.present_state = a_.past_state;
  a_.present_state.dtype = LINATTN_BFLOAT16;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "past_state"});
}

TEST_F(LinearAttentionValidation, PresentStateAliasNeedsTheSameStrides) {
  // Same pointer, transposed-looking strides over the same bytes.
  a_.past_state.strides[0] = 12;
  a_.past_state.strides[1] = 24;
  a_.present_state = a_.past_state;
  a_.present_state.strides[0] = 24;
  a_.present_state.strides[1] = 12;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "past_state"});
}

TEST_F(LinearAttentionValidation, NullPointers) {
  EXPECT_EQ(linattn_linear_attention(ctx_, nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "args"));
  const auto before = snapshot();
  EXPECT_EQ(linattn_linear_attention(nullptr, &a_), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "ctx"));
  expect_untouched(before);
}

// ---------------------------------------------------------------------------------------------
// CausalConvWithState
// ---------------------------------------------------------------------------------------------

class CausalConvValidation : public Harness {
 protected:
  void SetUp() override {
    Harness::SetUp();
    buffers_ = {&x_, &w_, &bias_, &past_, &y_, &pres_};
    make(2, 3, 5, 4, false);
  }

  void make(int64_t B, int64_t C, int64_t L, int64_t K, bool channels_last) {
    a_ = linattn_causal_conv_args{};
    a_.activation = LINATTN_ACTIVATION_SILU;
    a_.channels_last = channels_last ? 1 : 0;
    if (channels_last) {
      a_.input = view(x_, {B, L, C});
      a_.output = view(y_, {B, L, C});
    } else {
      a_.input = view(x_, {B, C, L});
      a_.output = view(y_, {B, C, L});
    }
    a_.weight = view(w_, {C, 1, K});
    a_.bias = view(bias_, {C});
    a_.past_state = view(past_, {B, C, K - 1});
    a_.present_state = view(pres_, {B, C, K - 1});
    fill_inputs(x_, 0.1f);
    fill_inputs(w_, 0.2f);
    fill_inputs(bias_, 0.3f);
    fill_inputs(past_, 0.4f);
    poison(y_);
    poison(pres_);
  }

  void reshape(linattn_tensor& t, Storage& s, std::initializer_list<int64_t> shape) {
    const linattn_dtype dt = t.dtype;
    t = view(s, shape, dt);
    if (&s == &y_ || &s == &pres_) poison(s);
  }

  void expect_error(linattn_status code, std::initializer_list<std::string> needles) {
    const auto before = snapshot();
    const linattn_status s = linattn_causal_conv(ctx_, &a_);
    const std::string msg = linattn_last_error();
    RecordProperty("message", msg);  // visible with --gtest_output=xml, for reviewing wording
    EXPECT_EQ(s, code) << linattn_status_name(s) << ": " << msg;
    for (const std::string& n : needles) EXPECT_TRUE(contains(msg, n)) << "'" << n << "' not in: " << msg;
    EXPECT_TRUE(contains(msg, "CausalConvWithState")) << msg;
    expect_untouched(before);
    EXPECT_EQ(linattn_causal_conv_supports(ctx_, &a_), code);
  }

  CausalConvParams expect_valid() {
    CausalConvParams p;
    const auto st = linattn::detail::check_causal_conv(a_, LINATTN_BACKEND_CPU, &p);
    EXPECT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(linattn_causal_conv_supports(ctx_, &a_), LINATTN_OK) << linattn_last_error();
    return p;
  }

  Storage x_, w_, bias_, past_, y_, pres_;
  linattn_causal_conv_args a_{};
};

TEST_F(CausalConvValidation, BaseCaseIsValidAndParamsAreComplete) {
  const CausalConvParams p = expect_valid();
  EXPECT_EQ(p.B, 2);
  EXPECT_EQ(p.C, 3);
  EXPECT_EQ(p.L, 5);
  EXPECT_EQ(p.K, 4);
  EXPECT_TRUE(p.silu);
  EXPECT_FALSE(p.channels_last);
  EXPECT_EQ(p.x_sb, 15);
  EXPECT_EQ(p.x_sc, 5);
  EXPECT_EQ(p.x_sl, 1);
  EXPECT_EQ(p.y_sc, 5);
  EXPECT_EQ(p.w_sc, 4);
  EXPECT_EQ(p.w_sk, 1);
  EXPECT_EQ(p.bias, a_.bias.data);
  EXPECT_EQ(p.bias_sc, 1);
  EXPECT_EQ(p.past_sb, 9);
  EXPECT_EQ(p.past_sc, 3);
  EXPECT_EQ(p.pres_sb, 9);
  EXPECT_FALSE(p.in_place);
}

TEST_F(CausalConvValidation, ChannelsLastMapsStridesToLogicalOrder) {
  make(2, 3, 5, 4, true);  // input (B, L, C) = (2, 5, 3)
  const CausalConvParams p = expect_valid();
  EXPECT_TRUE(p.channels_last);
  EXPECT_EQ(p.C, 3);
  EXPECT_EQ(p.L, 5);
  EXPECT_EQ(p.x_sb, 15);
  EXPECT_EQ(p.x_sc, 1);
  EXPECT_EQ(p.x_sl, 3);
  EXPECT_EQ(p.y_sc, 1);
  EXPECT_EQ(p.y_sl, 3);
}

TEST_F(CausalConvValidation, ChannelsLastChannelMismatch) {
  make(2, 3, 5, 4, true);
  reshape(a_.input, x_, {2, 3, 5});  // read as (B, L=3, C=5)
  reshape(a_.output, y_, {2, 3, 5});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "(3, 1, 4)", "C=5"});
}

TEST_F(CausalConvValidation, UnknownActivation) {
  a_.activation = static_cast<linattn_activation>(3);
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"activation", "3"});
}

TEST_F(CausalConvValidation, InputAbsent) {
  a_.input = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"input", "required"});
}

TEST_F(CausalConvValidation, InputWrongRank) {
  reshape(a_.input, x_, {2, 15});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"input", "(2, 15)", "rank 3"});
}

TEST_F(CausalConvValidation, WeightWrongRank) {
  reshape(a_.weight, w_, {3, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "(3, 4)"});
}

TEST_F(CausalConvValidation, WeightNotDepthwise) {
  reshape(a_.weight, w_, {3, 2, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "(3, 2, 4)", "depthwise"});
}

TEST_F(CausalConvValidation, WeightChannelMismatch) {
  reshape(a_.weight, w_, {4, 1, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "(4, 1, 4)", "C=3"});
}

TEST_F(CausalConvValidation, KernelWidthZero) {
  reshape(a_.weight, w_, {3, 1, 0});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "(3, 1, 0)", "k >= 1"});
}

TEST_F(CausalConvValidation, KernelWidthOneHasAnEmptyState) {
  make(2, 3, 5, 1, false);
  a_.past_state.data = nullptr;
  a_.present_state.data = nullptr;
  const CausalConvParams p = expect_valid();
  EXPECT_EQ(p.K, 1);
}

TEST_F(CausalConvValidation, BiasWrongShape) {
  reshape(a_.bias, bias_, {4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"bias", "(4)", "C=3"});
}

TEST_F(CausalConvValidation, BiasWrongRank) {
  reshape(a_.bias, bias_, {1, 3});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"bias", "(1, 3)"});
}

TEST_F(CausalConvValidation, BiasAndPastStateAreOptional) {
  a_.bias = linattn_tensor_absent();
  a_.past_state = linattn_tensor_absent();
  const CausalConvParams p = expect_valid();
  EXPECT_EQ(p.bias, nullptr);
  EXPECT_EQ(p.past, nullptr);
}

TEST_F(CausalConvValidation, PastStateBadShape) {
  reshape(a_.past_state, past_, {2, 3, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"past_state", "(2, 3, 4)", "k-1=3"});
}

TEST_F(CausalConvValidation, PresentStateBadShape) {
  reshape(a_.present_state, pres_, {1, 3, 3});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "(1, 3, 3)", "B=2"});
}

TEST_F(CausalConvValidation, PresentStateAbsent) {
  a_.present_state = linattn_tensor_absent();
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "required"});
}

TEST_F(CausalConvValidation, OutputShapeMismatch) {
  reshape(a_.output, y_, {2, 3, 4});
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "(2, 3, 4)", "(2, 3, 5)"});
}

TEST_F(CausalConvValidation, DtypesMustMatch) {
  a_.weight.dtype = LINATTN_FLOAT16;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "float16", "input", "float32"});
}

TEST_F(CausalConvValidation, StateDtypeMustBeFloat) {
  a_.past_state.dtype = LINATTN_INT32;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"past_state", "int32"});
}

TEST_F(CausalConvValidation, Float64OnCpuIsUnsupported) {
  for (linattn_tensor* t : {&a_.input, &a_.weight, &a_.bias, &a_.output}) t->dtype = LINATTN_FLOAT64;
  expect_error(LINATTN_ERROR_UNSUPPORTED, {"input", "float64"});
}

TEST_F(CausalConvValidation, HostBackendNeedsHostMemory) {
  a_.weight.memory = LINATTN_MEMORY_CUDA;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "cuda memory"});
}

TEST_F(CausalConvValidation, InnermostStrideMustBeOne) {
  a_.input.strides[2] = 0;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"input", "innermost"});
}

TEST_F(CausalConvValidation, NullData) {
  a_.weight.data = nullptr;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"weight", "null"});
}

TEST_F(CausalConvValidation, OutputMustNotOverlapItself) {
  a_.output.strides[0] = 5;  // batch entries on top of each other
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "overlap"});
}

TEST_F(CausalConvValidation, OutputMustNotOverlapInput) {
  a_.output = a_.input;  // in-place activations are not allowed
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"output", "overlaps", "input"});
}

TEST_F(CausalConvValidation, PresentStateMustNotOverlapWeight) {
  a_.present_state.data = a_.weight.data;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "overlaps", "weight"});
}

TEST_F(CausalConvValidation, PresentStateMayAliasPastStateExactly) {
  a_.present_state = a_.past_state;
  const CausalConvParams p = expect_valid();
  EXPECT_TRUE(p.in_place);
}

TEST_F(CausalConvValidation, PresentStateMustNotPartlyAliasPastState) {
  a_.present_state.data = static_cast<float*>(a_.past_state.data) + 3;
  expect_error(LINATTN_ERROR_INVALID_ARGUMENT, {"present_state", "past_state", "exactly"});
}

TEST_F(CausalConvValidation, NullPointers) {
  EXPECT_EQ(linattn_causal_conv(ctx_, nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_causal_conv(nullptr, &a_), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_causal_conv_supports(nullptr, &a_), LINATTN_ERROR_INVALID_ARGUMENT);
}

// ---------------------------------------------------------------------------------------------
// The success path: validation, params and dispatch to the float64 oracle on tiny cases,
// checked against the recurrence of SEMANTICS.md written out here.
// ---------------------------------------------------------------------------------------------

class ReferenceDispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    linattn_context_options o = linattn_context_default_options();
    o.backend = LINATTN_BACKEND_REFERENCE;
    o.num_threads = 2;
    ASSERT_EQ(linattn_context_create(&o, &ctx_), LINATTN_OK) << linattn_last_error();
  }
  void TearDown() override { linattn_context_destroy(ctx_); }
  linattn_context* ctx_ = nullptr;
};

TEST_F(ReferenceDispatch, GatedDeltaTinyCase) {
  // B = 1, T = 3, one head, d_k = 2, d_v = 2, per-head decay and beta, with a past state.
  constexpr int T = 3, dk = 2, dv = 2;
  float q[T * dk] = {0.3f, -0.2f, 0.5f, 0.1f, -0.4f, 0.7f};
  float k[T * dk] = {0.6f, 0.8f, -0.8f, 0.6f, 1.0f, 0.0f};
  float v[T * dv] = {0.5f, -1.0f, 0.25f, 0.75f, -0.5f, 0.2f};
  float g[T] = {-0.1f, -0.3f, -0.05f};
  float beta[T] = {0.9f, 0.4f, 0.6f};
  float past[dk * dv] = {0.1f, 0.2f, -0.3f, 0.4f};
  float out[T * dv], pres[dk * dv];
  std::memset(out, kPoison, sizeof(out));
  std::memset(pres, kPoison, sizeof(pres));

  linattn_linear_attention_args a{};
  a.q_num_heads = 1;
  a.kv_num_heads = 1;
  a.update_rule = LINATTN_RULE_GATED_DELTA;
  const int64_t s_tok_k[3] = {1, T, dk}, s_tok_v[3] = {1, T, dv}, s_tok_1[3] = {1, T, 1};
  const int64_t s_state[4] = {1, 1, dk, dv};
  a.query = linattn_tensor_contiguous(q, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, s_tok_k);
  a.key = linattn_tensor_contiguous(k, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, s_tok_k);
  a.value = linattn_tensor_contiguous(v, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, s_tok_v);
  a.decay = linattn_tensor_contiguous(g, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, s_tok_1);
  a.beta = linattn_tensor_contiguous(beta, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, s_tok_1);
  a.past_state = linattn_tensor_contiguous(past, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 4, s_state);
  a.output = linattn_tensor_contiguous(out, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, s_tok_v);
  a.present_state = linattn_tensor_contiguous(pres, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 4, s_state);
  ASSERT_EQ(linattn_linear_attention(ctx_, &a), LINATTN_OK) << linattn_last_error();
  EXPECT_STREQ(linattn_last_error(), "");

  double S[dk][dv];
  for (int i = 0; i < dk; ++i)
    for (int j = 0; j < dv; ++j) S[i][j] = past[i * dv + j];
  const double scale = 1.0 / std::sqrt(2.0);
  for (int t = 0; t < T; ++t) {
    for (auto& row : S)
      for (double& s : row) s *= std::exp(static_cast<double>(g[t]));
    double u[dv];
    for (int j = 0; j < dv; ++j) {
      double r = 0;
      for (int i = 0; i < dk; ++i) r += S[i][j] * k[t * dk + i];
      u[j] = beta[t] * (v[t * dv + j] - r);
    }
    for (int i = 0; i < dk; ++i)
      for (int j = 0; j < dv; ++j) S[i][j] += k[t * dk + i] * u[j];
    for (int j = 0; j < dv; ++j) {
      double o = 0;
      for (int i = 0; i < dk; ++i) o += S[i][j] * q[t * dk + i];
      EXPECT_NEAR(out[t * dv + j], scale * o, 1e-6) << "t=" << t << " j=" << j;
    }
  }
  for (int i = 0; i < dk; ++i)
    for (int j = 0; j < dv; ++j) EXPECT_NEAR(pres[i * dv + j], S[i][j], 1e-6);
}

TEST_F(ReferenceDispatch, CausalConvTinyCase) {
  // B = 1, C = 2, L = 3, k = 3, silu, bias, past state updated in place.
  constexpr int C = 2, L = 3, K = 3;
  float x[C * L] = {1.0f, -2.0f, 0.5f, 0.25f, 0.0f, -1.5f};
  float w[C * K] = {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 0.6f};
  float bias[C] = {0.05f, -0.1f};
  float state[C * (K - 1)] = {0.7f, -0.3f, 0.2f, 0.9f};
  const float past[C * (K - 1)] = {0.7f, -0.3f, 0.2f, 0.9f};
  float y[C * L];
  std::memset(y, kPoison, sizeof(y));

  linattn_causal_conv_args a{};
  a.activation = LINATTN_ACTIVATION_SILU;
  const int64_t xs[3] = {1, C, L}, ws[3] = {C, 1, K}, bs[1] = {C}, ss[3] = {1, C, K - 1};
  a.input = linattn_tensor_contiguous(x, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.weight = linattn_tensor_contiguous(w, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ws);
  a.bias = linattn_tensor_contiguous(bias, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 1, bs);
  a.past_state = linattn_tensor_contiguous(state, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ss);
  a.output = linattn_tensor_contiguous(y, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.present_state = a.past_state;  // in place
  ASSERT_EQ(linattn_causal_conv(ctx_, &a), LINATTN_OK) << linattn_last_error();

  for (int c = 0; c < C; ++c) {
    double P[K - 1 + L];
    for (int j = 0; j < K - 1; ++j) P[j] = past[c * (K - 1) + j];
    for (int l = 0; l < L; ++l) P[K - 1 + l] = x[c * L + l];
    for (int l = 0; l < L; ++l) {
      double acc = bias[c];
      for (int j = 0; j < K; ++j) acc += static_cast<double>(w[c * K + j]) * P[l + j];
      EXPECT_NEAR(y[c * L + l], acc / (1.0 + std::exp(-acc)), 1e-6) << "c=" << c << " l=" << l;
    }
    for (int j = 0; j < K - 1; ++j) EXPECT_NEAR(state[c * (K - 1) + j], P[L + j], 1e-6);
  }
}

}  // namespace
