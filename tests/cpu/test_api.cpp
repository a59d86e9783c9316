// The C ABI around the operators: contexts, names, parsing, view helpers, null pointers, the
// last-error contract (set on failure, cleared on success, per thread) and dispatch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "linattn/linattn.h"
#include "linattn/linattn.hpp"

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

linattn_context* make_context(linattn_backend backend, int32_t threads = 1) {
  linattn_context_options o = linattn_context_default_options();
  o.backend = backend;
  o.num_threads = threads;
  linattn_context* ctx = nullptr;
  EXPECT_EQ(linattn_context_create(&o, &ctx), LINATTN_OK) << linattn_last_error();
  return ctx;
}

// Fails a call on purpose so that last_error holds something.
void fail_once() {
  EXPECT_EQ(linattn_update_rule_from_string("nope", nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_STRNE(linattn_last_error(), "");
}

TEST(Context, DefaultOptions) {
  const linattn_context_options o = linattn_context_default_options();
  EXPECT_EQ(o.backend, LINATTN_BACKEND_CPU);
  EXPECT_EQ(o.device_id, 0);
  EXPECT_EQ(o.num_threads, 0);
  EXPECT_EQ(o.stream, nullptr);
  EXPECT_EQ(o.spin_us, 200);
}

TEST(Context, CreateAndDestroyHostBackends) {
  for (linattn_backend b : {LINATTN_BACKEND_CPU, LINATTN_BACKEND_REFERENCE}) {
    for (int32_t threads : {0, 1, 3}) {
      linattn_context* ctx = make_context(b, threads);
      ASSERT_NE(ctx, nullptr);
      EXPECT_EQ(linattn_context_set_stream(ctx, nullptr), LINATTN_OK);
      EXPECT_EQ(linattn_context_reserve_workspace(ctx, 1 << 20), LINATTN_OK);  // no-op on host
      linattn_context_destroy(ctx);
    }
  }
}

TEST(Context, DestroyNullIsANoOp) { linattn_context_destroy(nullptr); }

TEST(Context, CreateRejectsBadArguments) {
  linattn_context_options o = linattn_context_default_options();
  EXPECT_EQ(linattn_context_create(&o, nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "out")) << linattn_last_error();

  linattn_context* ctx = reinterpret_cast<linattn_context*>(0x1);
  EXPECT_EQ(linattn_context_create(nullptr, &ctx), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(ctx, nullptr);  // *out is cleared on failure
  EXPECT_TRUE(contains(linattn_last_error(), "options")) << linattn_last_error();

  o.backend = static_cast<linattn_backend>(7);
  EXPECT_EQ(linattn_context_create(&o, &ctx), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "backend")) << linattn_last_error();
  EXPECT_EQ(ctx, nullptr);

  o = linattn_context_default_options();
  o.num_threads = -1;
  EXPECT_EQ(linattn_context_create(&o, &ctx), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "num_threads")) << linattn_last_error();

  for (int32_t spin : {-1, 1'000'001}) {
    o = linattn_context_default_options();
    o.spin_us = spin;
    EXPECT_EQ(linattn_context_create(&o, &ctx), LINATTN_ERROR_INVALID_ARGUMENT);
    const std::string msg = linattn_last_error();
    EXPECT_TRUE(contains(msg, "spin_us is " + std::to_string(spin))) << msg;
    EXPECT_EQ(ctx, nullptr);
  }
  for (int32_t spin : {0, 1'000'000}) {  // the ends of the range are accepted
    o = linattn_context_default_options();
    o.spin_us = spin;
    o.num_threads = 2;
    ASSERT_EQ(linattn_context_create(&o, &ctx), LINATTN_OK) << linattn_last_error();
    linattn_context_destroy(ctx);
    ctx = nullptr;
  }
}

TEST(Context, CudaBackendUnavailableWithoutDevice) {
  linattn_context_options o = linattn_context_default_options();
  o.backend = LINATTN_BACKEND_CUDA;
  linattn_context* ctx = nullptr;
  const linattn_status s = linattn_context_create(&o, &ctx);
  if (linattn_cuda_available()) {
    ASSERT_EQ(s, LINATTN_OK) << linattn_last_error();
    // The workspace grows on demand and only then; reserving less is a no-op.
    EXPECT_EQ(linattn_context_reserve_workspace(ctx, 1 << 20), LINATTN_OK) << linattn_last_error();
    EXPECT_EQ(linattn_context_reserve_workspace(ctx, 1 << 10), LINATTN_OK) << linattn_last_error();
    EXPECT_EQ(linattn_context_reserve_workspace(ctx, 4 << 20), LINATTN_OK) << linattn_last_error();
    linattn_context_destroy(ctx);
    GTEST_SKIP() << "a CUDA device is visible: the unavailable path cannot be exercised";
  }
  EXPECT_EQ(s, LINATTN_ERROR_BACKEND_UNAVAILABLE);
  EXPECT_EQ(ctx, nullptr);
  EXPECT_TRUE(contains(linattn_last_error(), "CUDA")) << linattn_last_error();
}

TEST(Context, NullContextIsRejectedEverywhere) {
  EXPECT_EQ(linattn_context_set_stream(nullptr, nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "ctx"));
  EXPECT_EQ(linattn_context_reserve_workspace(nullptr, 16), LINATTN_ERROR_INVALID_ARGUMENT);
  linattn_linear_attention_args la{};
  linattn_causal_conv_args cc{};
  size_t bytes = 0;
  EXPECT_EQ(linattn_linear_attention(nullptr, &la), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_causal_conv(nullptr, &cc), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_linear_attention_supports(nullptr, &la), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_causal_conv_supports(nullptr, &cc), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_linear_attention_workspace_size(nullptr, &la, &bytes),
            LINATTN_ERROR_INVALID_ARGUMENT);
}

TEST(Names, StatusNames) {
  EXPECT_STREQ(linattn_status_name(LINATTN_OK), "OK");
  EXPECT_STREQ(linattn_status_name(LINATTN_ERROR_INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_STREQ(linattn_status_name(LINATTN_ERROR_UNSUPPORTED), "UNSUPPORTED");
  EXPECT_STREQ(linattn_status_name(LINATTN_ERROR_BACKEND_UNAVAILABLE), "BACKEND_UNAVAILABLE");
  EXPECT_STREQ(linattn_status_name(LINATTN_ERROR_DEVICE), "DEVICE_ERROR");
  EXPECT_STREQ(linattn_status_name(LINATTN_ERROR_OUT_OF_MEMORY), "OUT_OF_MEMORY");
  EXPECT_STREQ(linattn_status_name(LINATTN_ERROR_INTERNAL), "INTERNAL_ERROR");
  EXPECT_STREQ(linattn_status_name(static_cast<linattn_status>(99)), "UNKNOWN_STATUS");
}

TEST(Names, DtypeNamesAndSizes) {
  struct Row { linattn_dtype t; const char* name; size_t size; };
  for (const Row& r : {Row{LINATTN_FLOAT32, "float32", 4}, Row{LINATTN_FLOAT16, "float16", 2},
                       Row{LINATTN_BFLOAT16, "bfloat16", 2}, Row{LINATTN_FLOAT64, "float64", 8},
                       Row{LINATTN_INT32, "int32", 4}, Row{LINATTN_INT64, "int64", 8}}) {
    EXPECT_STREQ(linattn_dtype_name(r.t), r.name);
    EXPECT_EQ(linattn_dtype_size(r.t), r.size) << r.name;
  }
  EXPECT_STREQ(linattn_dtype_name(static_cast<linattn_dtype>(-1)), "unknown");
  EXPECT_EQ(linattn_dtype_size(static_cast<linattn_dtype>(-1)), 0u);
}

TEST(Parsing, UpdateRulesRoundTrip) {
  for (linattn_update_rule r : {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED, LINATTN_RULE_DELTA,
                                LINATTN_RULE_GATED_DELTA}) {
    linattn_update_rule parsed = static_cast<linattn_update_rule>(-1);
    ASSERT_EQ(linattn_update_rule_from_string(linattn_update_rule_name(r), &parsed), LINATTN_OK);
    EXPECT_EQ(parsed, r);
  }
  EXPECT_STREQ(linattn_update_rule_name(LINATTN_RULE_GATED_DELTA), "gated_delta");
  EXPECT_STREQ(linattn_update_rule_name(static_cast<linattn_update_rule>(9)), "unknown");
}

TEST(Parsing, UnknownUpdateRuleNamesTheStringAndTheChoices) {
  linattn_update_rule r = LINATTN_RULE_LINEAR;
  EXPECT_EQ(linattn_update_rule_from_string("gated-delta", &r), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(r, LINATTN_RULE_LINEAR);  // untouched
  const std::string msg = linattn_last_error();
  EXPECT_TRUE(contains(msg, "\"gated-delta\"")) << msg;
  for (const char* valid : {"linear", "gated", "delta", "gated_delta"}) {
    EXPECT_TRUE(contains(msg, valid)) << msg;
  }
  EXPECT_EQ(linattn_update_rule_from_string("", &r), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_update_rule_from_string("Linear", &r), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_update_rule_from_string(nullptr, &r), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_update_rule_from_string("linear", nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
}

TEST(Parsing, Activations) {
  linattn_activation a = LINATTN_ACTIVATION_SILU;
  ASSERT_EQ(linattn_activation_from_string("none", &a), LINATTN_OK);
  EXPECT_EQ(a, LINATTN_ACTIVATION_NONE);
  ASSERT_EQ(linattn_activation_from_string("silu", &a), LINATTN_OK);
  EXPECT_EQ(a, LINATTN_ACTIVATION_SILU);
  a = LINATTN_ACTIVATION_NONE;
  ASSERT_EQ(linattn_activation_from_string("swish", &a), LINATTN_OK);
  EXPECT_EQ(a, LINATTN_ACTIVATION_SILU);

  EXPECT_EQ(linattn_activation_from_string("relu", &a), LINATTN_ERROR_INVALID_ARGUMENT);
  const std::string msg = linattn_last_error();
  EXPECT_TRUE(contains(msg, "\"relu\"")) << msg;
  EXPECT_TRUE(contains(msg, "none, silu, swish")) << msg;
  EXPECT_EQ(linattn_activation_from_string(nullptr, &a), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(linattn_activation_from_string("none", nullptr), LINATTN_ERROR_INVALID_ARGUMENT);
}

TEST(LastError, SetOnFailureClearedOnSuccess) {
  fail_once();
  EXPECT_TRUE(contains(linattn_last_error(), "out")) << linattn_last_error();
  // Functions that return no status (names, sizes, helpers) leave it alone.
  linattn_status_name(LINATTN_OK);
  linattn_dtype_size(LINATTN_FLOAT32);
  (void)linattn_tensor_absent();
  EXPECT_STRNE(linattn_last_error(), "");
  // Any successful status-returning call clears it.
  linattn_activation a;
  ASSERT_EQ(linattn_activation_from_string("silu", &a), LINATTN_OK);
  EXPECT_STREQ(linattn_last_error(), "");
}

TEST(LastError, IsPerThread) {
  fail_once();
  const std::string mine = linattn_last_error();
  std::string theirs = "unset";
  std::thread([&] { theirs = linattn_last_error(); }).join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(mine, linattn_last_error());
}

TEST(TensorHelpers, AbsentAndContiguous) {
  const linattn_tensor a = linattn_tensor_absent();
  EXPECT_EQ(a.rank, 0);
  EXPECT_EQ(a.data, nullptr);

  float buf[1];
  const int64_t shape[4] = {2, 3, 4, 5};
  const linattn_tensor t =
      linattn_tensor_contiguous(buf, LINATTN_BFLOAT16, LINATTN_MEMORY_CUDA, 4, shape);
  EXPECT_EQ(t.data, buf);
  EXPECT_EQ(t.dtype, LINATTN_BFLOAT16);
  EXPECT_EQ(t.memory, LINATTN_MEMORY_CUDA);
  EXPECT_EQ(t.rank, 4);
  const int64_t want[4] = {60, 20, 5, 1};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(t.shape[i], shape[i]);
    EXPECT_EQ(t.strides[i], want[i]);
  }
  // Empty dims do not zero the strides outside them.
  const int64_t empty[3] = {2, 0, 4};
  const linattn_tensor e =
      linattn_tensor_contiguous(nullptr, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, empty);
  EXPECT_EQ(e.strides[0], 4);
  EXPECT_EQ(e.strides[1], 4);
  EXPECT_EQ(e.strides[2], 1);
}

TEST(TensorHelpers, MalformedRequestsGiveAnInvalidRank) {
  const int64_t shape[4] = {1, 1, 1, 1};
  EXPECT_EQ(linattn_tensor_contiguous(nullptr, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 5, shape).rank,
            -1);
  EXPECT_EQ(linattn_tensor_contiguous(nullptr, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, nullptr)
                .rank,
            -1);
  EXPECT_EQ(linattn_tensor_contiguous(nullptr, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 0, nullptr)
                .rank,
            0);
}

// A small valid gated_delta problem on host buffers.
struct Problem {
  static constexpr int64_t B = 2, T = 5, Hq = 2, Hkv = 4, dk = 8, dv = 4;
  std::vector<float> q, k, v, g, beta, past, out, pres;
  linattn_linear_attention_args args{};

  Problem() {
    auto fill = [](std::vector<float>& x, size_t n, float lo, float hi, unsigned seed) {
      x.resize(n);
      for (size_t i = 0; i < n; ++i) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * static_cast<float>(seed >> 8) / static_cast<float>(1u << 24);
      }
    };
    fill(q, B * T * Hq * dk, -1, 1, 1);
    fill(k, B * T * Hq * dk, -0.3f, 0.3f, 2);
    fill(v, B * T * Hkv * dv, -1, 1, 3);
    fill(g, B * T * Hkv, -0.5f, 0, 4);
    fill(beta, B * T * Hkv, 0, 1, 5);
    fill(past, B * Hkv * dk * dv, -1, 1, 6);
    out.assign(B * T * Hkv * dv, std::nanf(""));
    pres.assign(past.size(), std::nanf(""));
    args.q_num_heads = Hq;
    args.kv_num_heads = Hkv;
    args.update_rule = LINATTN_RULE_GATED_DELTA;
    const int64_t sq[3] = {B, T, Hq * dk}, sv[3] = {B, T, Hkv * dv}, sg[3] = {B, T, Hkv};
    const int64_t ss[4] = {B, Hkv, dk, dv};
    auto view = [](std::vector<float>& x, int32_t r, const int64_t* s) {
      return linattn_tensor_contiguous(x.data(), LINATTN_FLOAT32, LINATTN_MEMORY_HOST, r, s);
    };
    args.query = view(q, 3, sq);
    args.key = view(k, 3, sq);
    args.value = view(v, 3, sv);
    args.decay = view(g, 3, sg);
    args.beta = view(beta, 3, sg);
    args.past_state = view(past, 4, ss);
    args.output = view(out, 3, sv);
    args.present_state = view(pres, 4, ss);
  }
};

TEST(Dispatch, SupportsAndWorkspaceSizeOnHost) {
  linattn_context* ctx = make_context(LINATTN_BACKEND_CPU);
  Problem p;
  EXPECT_EQ(linattn_linear_attention_supports(ctx, &p.args), LINATTN_OK) << linattn_last_error();
  size_t bytes = 123;
  EXPECT_EQ(linattn_linear_attention_workspace_size(ctx, &p.args, &bytes), LINATTN_OK);
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(linattn_linear_attention_workspace_size(ctx, &p.args, nullptr),
            LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(linattn_last_error(), "bytes"));
  p.args.kv_num_heads = 3;
  bytes = 123;
  EXPECT_EQ(linattn_linear_attention_workspace_size(ctx, &p.args, &bytes),
            LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(bytes, 123u);
  linattn_context_destroy(ctx);
}

TEST(Dispatch, CpuMatchesReferenceThroughTheCApi) {
  linattn_context* ref = make_context(LINATTN_BACKEND_REFERENCE, 2);
  linattn_context* cpu = make_context(LINATTN_BACKEND_CPU, 2);
  Problem want, got;
  ASSERT_EQ(linattn_linear_attention(ref, &want.args), LINATTN_OK) << linattn_last_error();
  const linattn_status s = linattn_linear_attention(cpu, &got.args);
  if (s == LINATTN_ERROR_UNSUPPORTED) {
    linattn_context_destroy(ref);
    linattn_context_destroy(cpu);
    GTEST_SKIP() << "cpu backend: " << linattn_last_error();
  }
  ASSERT_EQ(s, LINATTN_OK) << linattn_last_error();
  double err = 0, norm = 0;
  for (size_t i = 0; i < want.out.size(); ++i) {
    ASSERT_FALSE(std::isnan(got.out[i])) << "output element " << i << " was not written";
    err += (got.out[i] - want.out[i]) * (got.out[i] - want.out[i]);
    norm += want.out[i] * want.out[i];
  }
  EXPECT_LT(std::sqrt(err / norm), 1e-5);
  for (size_t i = 0; i < want.pres.size(); ++i) {
    EXPECT_NEAR(got.pres[i], want.pres[i], 1e-4 * (1 + std::fabs(want.pres[i]))) << i;
  }
  linattn_context_destroy(ref);
  linattn_context_destroy(cpu);
}

TEST(Dispatch, InPlaceStateUpdateEqualsOutOfPlace) {
  linattn_context* ref = make_context(LINATTN_BACKEND_REFERENCE, 1);
  Problem out_of_place, in_place;
  in_place.args.present_state = in_place.args.past_state;
  ASSERT_EQ(linattn_linear_attention(ref, &out_of_place.args), LINATTN_OK);
  ASSERT_EQ(linattn_linear_attention(ref, &in_place.args), LINATTN_OK) << linattn_last_error();
  EXPECT_EQ(in_place.past, out_of_place.pres);
  EXPECT_EQ(in_place.out, out_of_place.out);
  linattn_context_destroy(ref);
}

TEST(CppApi, ContextAndStatus) {
  linattn::Context ctx;
  ASSERT_TRUE(linattn::Context::create(LINATTN_BACKEND_REFERENCE, &ctx, 1));
  ASSERT_NE(ctx.get(), nullptr);
  Problem p;
  EXPECT_TRUE(linattn::supports(ctx, p.args));
  p.args.update_rule = static_cast<linattn_update_rule>(12);
  const linattn::Status s = linattn::linear_attention(ctx, p.args);
  EXPECT_EQ(s.code(), LINATTN_ERROR_INVALID_ARGUMENT);
  EXPECT_TRUE(contains(s.to_string(), "INVALID_ARGUMENT: LinearAttention: update_rule"))
      << s.to_string();
  linattn::Context moved = std::move(ctx);
  EXPECT_EQ(ctx.get(), nullptr);
  EXPECT_NE(moved.get(), nullptr);
}

}  // namespace

// The C defaults are the dense operator: every tensor absent, every serving extension off.
TEST(Api, DefaultArgsAreTheDenseOperator) {
  linattn_linear_attention_args la = linattn_linear_attention_args_default();
  EXPECT_EQ(la.update_rule, LINATTN_RULE_GATED_DELTA);
  EXPECT_EQ(la.scale, 0.f);
  EXPECT_EQ(la.chunk_size, 0);
  EXPECT_EQ(la.strict, 0);
  for (const linattn_tensor* t : {&la.query, &la.key, &la.value, &la.past_state, &la.decay,
                                  &la.beta, &la.output, &la.present_state,
                                  &la.serving.cu_seqlens, &la.serving.state_indices,
                                  &la.serving.checkpoint_indices}) {
    EXPECT_EQ(t->rank, 0);
    EXPECT_EQ(t->data, nullptr);
  }
  EXPECT_EQ(la.serving.qk_l2norm, 0);
  EXPECT_EQ(la.serving.fused_gating, 0);
  EXPECT_EQ(la.serving.checkpoint_interval, 0);
  EXPECT_EQ(la.serving.state_layout, LINATTN_STATE_KEY_MAJOR);

  linattn_causal_conv_args cc = linattn_causal_conv_args_default();
  EXPECT_EQ(cc.activation, LINATTN_ACTIVATION_NONE);
  EXPECT_EQ(cc.channels_last, 0);
  for (const linattn_tensor* t : {&cc.input, &cc.weight, &cc.bias, &cc.past_state, &cc.output,
                                  &cc.present_state, &cc.serving.state_indices}) {
    EXPECT_EQ(t->rank, 0);
  }
  // The C++ layer uses the same defaults.
  linattn::LinearAttentionArgs cpp = linattn::default_linear_attention_args();
  EXPECT_EQ(0, std::memcmp(&cpp, &la, sizeof la));
}
