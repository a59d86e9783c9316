// Execution-model and edge-case checks of the CUDA backend against the float64 oracle:
// in-place updates (present aliases past: linear attention and the conv update), independent
// past/present state dtypes, chained calls, a call captured in a CUDA graph and replayed on
// fresh inputs, B = 2048 with a state batch stride that needs 64-bit offsets, and agreement
// with the CPU backend on random cases.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "common/cases.hpp"
#include "common/oracle_runner.hpp"
#include "gpu/cuda_support.hpp"

namespace linattn::test {
namespace {

// Device mirrors of a case's tensors, with the args pointing at them.
struct DeviceCall {
  CudaPlacement pl;
  linattn_linear_attention_args args{};
  void* out_dev = nullptr;
  void* state_dev = nullptr;

  static linattn_tensor mirror(const linattn_tensor& host_view, const HostTensor& t,
                               CudaPlacement& pl, void** base_out = nullptr) {
    if (!t.present()) return host_view;
    const int64_t offset = static_cast<const char*>(host_view.data) - static_cast<const char*>(t.data());
    void* base = pl.upload(t);
    if (base_out) *base_out = base;
    linattn_tensor v = host_view;
    v.data = static_cast<char*>(base) + offset;
    v.memory = LINATTN_MEMORY_CUDA;
    return v;
  }

  DeviceCall(const LinearAttentionCase& c, const LinearAttentionInputs& in,
             LinearAttentionOutputs& out) {
    args = make_args(c, in, out);
    args.query = mirror(args.query, in.query, pl);
    args.key = mirror(args.key, in.key, pl);
    args.value = mirror(args.value, in.value, pl);
    args.past_state = mirror(args.past_state, in.past_state, pl);
    args.decay = mirror(args.decay, in.decay, pl);
    args.beta = mirror(args.beta, in.beta, pl);
    args.output = mirror(args.output, out.output, pl, &out_dev);
    args.present_state = mirror(args.present_state, out.present_state, pl, &state_dev);
  }
};

// The same for a conv call: past_dev is the past_state mirror (read back by in-place tests).
struct ConvDeviceCall {
  CudaPlacement pl;
  linattn_causal_conv_args args{};
  void* out_dev = nullptr;
  void* past_dev = nullptr;
  void* state_dev = nullptr;

  ConvDeviceCall(const CausalConvCase& c, const CausalConvInputs& in, CausalConvOutputs& out) {
    args = make_args(c, in, out);
    args.input = DeviceCall::mirror(args.input, in.input, pl);
    args.weight = DeviceCall::mirror(args.weight, in.weight, pl);
    args.bias = DeviceCall::mirror(args.bias, in.bias, pl);
    args.past_state = DeviceCall::mirror(args.past_state, in.past_state, pl, &past_dev);
    args.output = DeviceCall::mirror(args.output, out.output, pl, &out_dev);
    args.present_state = DeviceCall::mirror(args.present_state, out.present_state, pl, &state_dev);
  }
};

LinearAttentionCase decode_case(uint64_t seed) {
  LinearAttentionCase c;
  c.B = 3;
  c.T = 1;
  c.Hq = 2;
  c.Hk = 2;
  c.Hkv = 4;  // inverse GQA, as Qwen3.5
  c.dk = 128;
  c.dv = 128;
  c.seed = seed;
  return c;
}

TEST(CudaExecution, InPlaceStateUpdate) {
  LINATTN_SKIP_WITHOUT_GPU();
  for (linattn_dtype state : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
    for (int64_t T : {1, 7}) {
      LinearAttentionCase c = decode_case(11 + T);
      c.T = T;
      c.state_dtype = state;
      c.act_dtype = LINATTN_BFLOAT16;
      const LinearAttentionInputs in = make_inputs(c);
      LinearAttentionOutputs ref;
      ASSERT_TRUE(run_oracle(c, in, &ref).ok());
      LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, false);
      DeviceCall call(c, in, out);
      void* past_dev = const_cast<void*>(call.args.past_state.data);
      call.args.present_state = call.args.past_state;  // same pointer, same strides
      ASSERT_TRUE(linear_attention(cuda_context(), call.args).ok()) << linattn_last_error();
      call.pl.synchronize();
      call.pl.download(call.out_dev, out.output);
      HostTensor state_back = in.past_state;
      call.pl.download(past_dev, state_back);
      EXPECT_TRUE(passed(compare(c.name() + "_in_place", out.output, state_back, ref.output,
                                 ref.present_state, default_tolerance(c))));
    }
  }
}

TEST(CudaExecution, IndependentPastAndPresentDtypes) {
  LINATTN_SKIP_WITHOUT_GPU();
  const linattn_dtype kTypes[] = {LINATTN_FLOAT32, LINATTN_FLOAT16, LINATTN_BFLOAT16};
  uint64_t seed = 40;
  for (linattn_dtype past : kTypes)
    for (linattn_dtype present : kTypes) {
      if (past == present) continue;
      LinearAttentionCase c = decode_case(seed++);
      c.T = 3;
      c.dk = (seed % 2) ? 128 : 16;
      c.dv = (seed % 2) ? 64 : 32;
      c.state_dtype = past;
      const LinearAttentionInputs in = make_inputs(c);
      LinearAttentionOutputs ref;
      ASSERT_TRUE(run_oracle(c, in, &ref).ok());
      LinearAttentionOutputs out = make_outputs(c, c.act_dtype, present, seed % 3 == 0);
      CudaPlacement pl;
      ASSERT_TRUE(run_on(cuda_context(), make_args(c, in, out), in, out, &pl).ok())
          << linattn_last_error();
      Tolerance tol = default_tolerance(c);
      tol.state = dtype_tolerance(past) + dtype_tolerance(present);
      EXPECT_TRUE(passed(compare(c.name() + "_present_" + dtype_short_name(present), out.output,
                                 out.present_state, ref.output, ref.present_state, tol)));
    }
}

// T tokens in one call equal the same tokens split over chained calls (present -> past).
TEST(CudaExecution, ChainedCallsMatchOneCall) {
  LINATTN_SKIP_WITHOUT_GPU();
  LinearAttentionCase whole = decode_case(77);
  whole.T = 9;
  whole.dk = 64;
  whole.dv = 64;
  const LinearAttentionInputs in = make_inputs(whole);
  LinearAttentionOutputs ref;
  ASSERT_TRUE(run_oracle(whole, in, &ref).ok());

  LinearAttentionOutputs out = make_outputs(whole, whole.act_dtype, whole.state_dtype, false);
  DeviceCall call(whole, in, out);
  // Run tokens [0, 4) then [4, 9), the second call reading the first one's present_state.
  const int64_t split = 4;
  linattn_linear_attention_args a = call.args;
  auto sub = [&](linattn_tensor v, int64_t b0, int64_t b1) {
    return v.rank == 0 ? v : slice_view(v, 1, b0, b1);
  };
  a.query = sub(call.args.query, 0, split);
  a.key = sub(call.args.key, 0, split);
  a.value = sub(call.args.value, 0, split);
  a.decay = sub(call.args.decay, 0, split);
  a.beta = sub(call.args.beta, 0, split);
  a.output = sub(call.args.output, 0, split);
  ASSERT_TRUE(linear_attention(cuda_context(), a).ok()) << linattn_last_error();
  a.past_state = call.args.present_state;
  a.query = sub(call.args.query, split, whole.T);
  a.key = sub(call.args.key, split, whole.T);
  a.value = sub(call.args.value, split, whole.T);
  a.decay = sub(call.args.decay, split, whole.T);
  a.beta = sub(call.args.beta, split, whole.T);
  a.output = sub(call.args.output, split, whole.T);
  ASSERT_TRUE(linear_attention(cuda_context(), a).ok()) << linattn_last_error();
  call.pl.synchronize();
  call.pl.download(call.out_dev, out.output);
  call.pl.download(call.state_dev, out.present_state);
  EXPECT_TRUE(passed(compare(whole.name() + "_chained", out.output, out.present_state,
                             ref.output, ref.present_state, default_tolerance(whole))));
}

// A decode step and a conv update captured into one graph, replayed on two sets of inputs.
TEST(CudaExecution, GraphCaptureAndReplay) {
  LINATTN_SKIP_WITHOUT_GPU();
  GraphStream g;
  ASSERT_TRUE(g.ok());

  LinearAttentionCase c = decode_case(300);
  c.act_dtype = LINATTN_BFLOAT16;
  CausalConvCase cc;
  cc.B = 3;
  cc.C = 96;
  cc.L = 1;
  cc.K = 4;
  cc.act_dtype = LINATTN_BFLOAT16;
  cc.seed = 301;

  LinearAttentionInputs in = make_inputs(c);
  LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, false);
  DeviceCall call(c, in, out);
  CausalConvInputs cin = make_inputs(cc);
  CausalConvOutputs cout = make_outputs(cc, cc.act_dtype, cc.state_dtype, false);
  ConvDeviceCall conv(cc, cin, cout);
  linattn_causal_conv_args& ca = conv.args;
  CudaPlacement& cpl = conv.pl;
  void* conv_out_dev = conv.out_dev;
  void* conv_state_dev = conv.state_dev;

  ASSERT_TRUE(g.capture([&] {
    const Status s1 = linear_attention(g.ctx(), call.args);
    return s1.ok() ? causal_conv(g.ctx(), ca) : s1;
  }));

  for (int replay = 0; replay < 2; ++replay) {
    if (replay == 1) {  // fresh inputs into the same device buffers
      c.seed += 1000;
      cc.seed += 1000;
      const LinearAttentionInputs fresh = make_inputs(c);
      const CausalConvInputs cfresh = make_inputs(cc);
      // The case is not strided, so each view's pointer is its storage base.
      auto refill = [](const linattn_tensor& v, const HostTensor& host_new) {
        if (!host_new.present()) return;
        cudaMemcpy(v.data, host_new.data(), host_new.storage_bytes(), cudaMemcpyHostToDevice);
      };
      refill(call.args.query, fresh.query);
      refill(call.args.key, fresh.key);
      refill(call.args.value, fresh.value);
      refill(call.args.past_state, fresh.past_state);
      refill(call.args.decay, fresh.decay);
      refill(call.args.beta, fresh.beta);
      refill(ca.input, cfresh.input);
      refill(ca.past_state, cfresh.past_state);
      in = fresh;
      cin.input = cfresh.input;
      cin.past_state = cfresh.past_state;
    }
    // Poison the outputs, replay, compare.
    LINATTN_CUDA_OK(cudaMemset(call.out_dev, 0xff, out.output.storage_bytes()));
    LINATTN_CUDA_OK(cudaMemset(call.state_dev, 0xff, out.present_state.storage_bytes()));
    LINATTN_CUDA_OK(cudaMemset(conv_out_dev, 0xff, cout.output.storage_bytes()));
    LINATTN_CUDA_OK(cudaMemset(conv_state_dev, 0xff, cout.present_state.storage_bytes()));
    ASSERT_TRUE(g.replay());
    call.pl.download(call.out_dev, out.output);
    call.pl.download(call.state_dev, out.present_state);
    cpl.download(conv_out_dev, cout.output);
    cpl.download(conv_state_dev, cout.present_state);
    LinearAttentionOutputs ref;
    ASSERT_TRUE(run_oracle(c, in, &ref).ok());
    EXPECT_TRUE(passed(compare(c.name() + "_graph_replay" + std::to_string(replay), out.output,
                               out.present_state, ref.output, ref.present_state,
                               default_tolerance(c))));
    CausalConvOutputs cref;
    ASSERT_TRUE(run_oracle(cc, cin, &cref).ok());
    EXPECT_TRUE(passed(compare(cc.name() + "_graph_replay" + std::to_string(replay), cout.output,
                               cout.present_state, cref.output, cref.present_state,
                               default_tolerance(cc))));
  }
}

// Conv calls whose present_state aliases past_state (the serving form): an update (L = 1) and
// a channels-last prefill on the bulk-copy kernels' shapes (16-bit, several channel tiles, the
// last partial; the prefill also several time tiles), and float32, which takes the register
// kernels.
TEST(CudaExecution, ConvInPlaceState) {
  LINATTN_SKIP_WITHOUT_GPU();
  uint64_t seed = 500;
  for (int64_t L : {1, 70})
    for (linattn_dtype dt : {LINATTN_BFLOAT16, LINATTN_FLOAT16, LINATTN_FLOAT32})
      for (int32_t K : {2, 3, 4}) {
        CausalConvCase cc;
        cc.B = 3;
        cc.C = L == 1 ? 2072 : 520;
        cc.L = L;
        cc.channels_last = L > 1;
        cc.K = K;
        cc.act_dtype = dt;
        cc.state_dtype = dt;
        cc.bias = K != 3;
        cc.silu = K != 2;
        cc.seed = seed++;
        const CausalConvInputs cin = make_inputs(cc);
        CausalConvOutputs cout = make_outputs(cc, dt, dt, false);
        ConvDeviceCall call(cc, cin, cout);
        call.args.present_state = call.args.past_state;  // same pointer, same strides
        ASSERT_TRUE(causal_conv(cuda_context(), call.args).ok()) << linattn_last_error();
        call.pl.synchronize();
        call.pl.download(call.out_dev, cout.output);
        HostTensor state_back = cin.past_state;
        call.pl.download(call.past_dev, state_back);
        CausalConvOutputs ref;
        ASSERT_TRUE(run_oracle(cc, cin, &ref).ok());
        EXPECT_TRUE(passed(compare(cc.name() + "_in_place", cout.output, state_back, ref.output,
                                   ref.present_state, default_tolerance(cc))));
      }
}

// Three conv updates in a row on one state in place (bf16, the bulk-copy kernel, which is
// launched to overlap the previous kernel's tail): on a stream and captured into a graph (the
// calls joined by programmatic edges), each call must see the state the one before it wrote.
// Compared with the oracle run three times on the host.
TEST(CudaExecution, ChainedConvUpdatesOnStreamAndInGraph) {
  LINATTN_SKIP_WITHOUT_GPU();
  for (bool graph : {false, true}) {
    CausalConvCase cc;
    cc.B = 5;
    cc.C = 2072;  // three channel tiles, the last partial
    cc.L = 1;
    cc.K = 4;
    cc.act_dtype = LINATTN_BFLOAT16;
    cc.state_dtype = LINATTN_BFLOAT16;
    cc.seed = graph ? 612 : 611;
    const CausalConvInputs cin = make_inputs(cc);
    CausalConvOutputs cout = make_outputs(cc, cc.act_dtype, cc.state_dtype, false);
    GraphStream g;
    ASSERT_TRUE(g.ok());
    ConvDeviceCall call(cc, cin, cout);
    call.args.present_state = call.args.past_state;
    const auto three = [&] {
      Status st;
      for (int j = 0; j < 3 && st.ok(); ++j) st = causal_conv(g.ctx(), call.args);
      return st;
    };
    LINATTN_CUDA_OK(cudaMemset(call.out_dev, 0xff, cout.output.storage_bytes()));
    if (graph) {
      ASSERT_TRUE(g.capture(three));
      ASSERT_TRUE(g.replay());
    } else {
      ASSERT_TRUE(three().ok()) << linattn_last_error();
    }
    call.pl.synchronize();
    call.pl.download(call.out_dev, cout.output);
    HostTensor state_back = cin.past_state;
    call.pl.download(call.past_dev, state_back);
    CausalConvInputs step = cin;
    CausalConvOutputs ref;
    for (int j = 0; j < 3; ++j) {
      ASSERT_TRUE(run_oracle(cc, step, &ref).ok());
      step.past_state = ref.present_state.converted(cc.state_dtype, false);
    }
    EXPECT_TRUE(passed(compare(cc.name() + (graph ? "_graph" : "_stream") + "_three_updates", cout.output,
                               state_back, ref.output, ref.present_state, default_tolerance(cc))));
  }
}

// B = 2048 with a state batch stride of 2^20 + 1024 elements: state offsets pass 2^31 elements,
// so any 32-bit index arithmetic lands on the wrong sequence. Only the used rows are copied.
TEST(CudaExecution, LargeBatchNeedsSixtyFourBitOffsets) {
  LINATTN_SKIP_WITHOUT_GPU();
  LinearAttentionCase c;
  c.B = 2048;
  c.T = 1;
  c.Hq = c.Hk = c.Hkv = 2;
  c.dk = c.dv = 64;
  c.seed = 2048;
  const LinearAttentionInputs in = make_inputs(c);
  LinearAttentionOutputs ref;
  ASSERT_TRUE(run_oracle(c, in, &ref).ok());
  LinearAttentionOutputs out = make_outputs(c, c.act_dtype, c.state_dtype, false);
  DeviceCall call(c, in, out);

  const int64_t per_seq = int64_t{c.Hkv} * c.dk * c.dv;  // packed state elements per sequence
  const int64_t sb = (int64_t{1} << 20) + 1024;
  ASSERT_GT(sb * (c.B - 1), int64_t{1} << 31);
  void* big = nullptr;
  const size_t bytes = static_cast<size_t>(sb * c.B) * sizeof(float);
  if (cudaMalloc(&big, bytes) != cudaSuccess) {
    cudaGetLastError();
    GTEST_SKIP() << "not enough device memory for the " << bytes << "-byte strided state";
  }
  HostTensor packed = in.past_state.converted(LINATTN_FLOAT32, false);
  LINATTN_CUDA_OK(cudaMemcpy2D(big, sb * sizeof(float), packed.data(), per_seq * sizeof(float),
                               per_seq * sizeof(float), c.B, cudaMemcpyHostToDevice));
  linattn_tensor state = call.args.past_state;
  state.data = big;
  state.strides[0] = sb;
  call.args.past_state = state;
  call.args.present_state = state;  // in place
  const Status s = linear_attention(cuda_context(), call.args);
  call.pl.synchronize();
  ASSERT_TRUE(s.ok()) << s.to_string();
  call.pl.download(call.out_dev, out.output);
  HostTensor back(LINATTN_FLOAT32, packed.shape(), false);
  LINATTN_CUDA_OK(cudaMemcpy2D(back.data(), per_seq * sizeof(float), big, sb * sizeof(float),
                               per_seq * sizeof(float), c.B, cudaMemcpyDeviceToHost));
  cudaFree(big);
  EXPECT_TRUE(passed(compare(c.name() + "_B2048_strided", out.output, back, ref.output,
                             ref.present_state, default_tolerance(c))));
}

// The CUDA and CPU backends agree with each other (and both with the oracle) on random cases.
TEST(CudaExecution, AgreesWithCpuBackend) {
  LINATTN_SKIP_WITHOUT_GPU();
  std::mt19937_64 rng(99);
  const linattn_dtype kTypes[] = {LINATTN_FLOAT32, LINATTN_FLOAT16, LINATTN_BFLOAT16};
  for (int i = 0; i < 24; ++i) {
    LinearAttentionCase c;
    c.rule = static_cast<linattn_update_rule>(rng() % 4);
    const int32_t g = 1 + static_cast<int32_t>(rng() % 3);
    c.Hkv = 1 + static_cast<int32_t>(rng() % 3);
    c.Hk = c.Hkv;
    c.Hq = (rng() % 2) ? c.Hkv * g : c.Hkv;
    const int32_t dims[] = {8, 16, 24, 64, 128};
    c.dk = dims[rng() % 5];
    c.dv = dims[rng() % 5];
    c.T = 1 + static_cast<int64_t>(rng() % 40);
    c.B = 1 + static_cast<int64_t>(rng() % 3);
    c.decay = (rng() % 2) ? DecayKind::kPerHead : DecayKind::kPerKeyDim;
    c.beta = (rng() % 2) ? BetaKind::kPerHead : BetaKind::kShared;
    c.act_dtype = kTypes[rng() % 3];
    c.state_dtype = kTypes[rng() % 3];
    c.strided = rng() % 2;
    c.seed = rng();
    const LinearAttentionInputs in = make_inputs(c);
    LinearAttentionOutputs gpu = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
    LinearAttentionOutputs cpu = make_outputs(c, c.act_dtype, c.state_dtype, c.strided);
    CudaPlacement pl;
    ASSERT_TRUE(run_on(cuda_context(), make_args(c, in, gpu), in, gpu, &pl).ok())
        << linattn_last_error();
    const Status s = run_on(cpu_context(2), make_args(c, in, cpu), in, cpu, nullptr);
    if (s.code() == LINATTN_ERROR_UNSUPPORTED) GTEST_SKIP() << "CPU backend: " << s.to_string();
    ASSERT_TRUE(s.ok()) << s.to_string();
    // Two float32 implementations, each within the dtype tolerance of the oracle.
    Tolerance tol = default_tolerance(c);
    tol.output *= 2;
    tol.state *= 2;
    EXPECT_TRUE(passed(compare(c.name() + "_gpu_vs_cpu", gpu.output, gpu.present_state,
                               cpu.output, cpu.present_state, tol)));
  }
}

}  // namespace
}  // namespace linattn::test
