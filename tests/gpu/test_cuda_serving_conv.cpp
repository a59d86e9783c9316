// Serving extensions of CausalConvWithState on the CUDA backend against the reference backend
// (the float64 oracle, which runs docs/SERVING.md's rules on the host): the same call, the same
// initial pools, on host tensors and on device copies. Outputs are compared within what the
// output dtype can hold; pools (padding included) must come back BIT-identical to the oracle's,
// since a conv state is a window of copied inputs and states with no arithmetic: that checks
// every written slot and that every other slot and every padding element is untouched.
// Outputs and padding start as NaN, so a row written that should not be, or missed, shows.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "../cpu/serving_support.hpp"
#include "gpu/cuda_support.hpp"

namespace linattn::test::serving {
namespace {

// One serving call, described by value.
struct ConvCall {
  int64_t C = 40;
  int32_t K = 4;
  bool cl = false, bias = true, silu = true;
  linattn_dtype act = LINATTN_FLOAT32, state = LINATTN_FLOAT32;
  // Tokens: packed sequences of `lens`, or B rows of L tokens.
  bool packed = true;
  std::vector<int64_t> lens;
  int64_t B = 0, L = 0;
  // State: a pool of `slots` (optionally read from a separate past pool), or one row per
  // sequence (with past rows when `past_rows`).
  bool pool = true, strided_pool = false, separate_past = false, past_alias = false;
  bool past_rows = false;
  int64_t slots = 0, past_slots = 0;
  linattn_dtype past_dtype = LINATTN_FLOAT32;
  int64_t Ts = 0;  // > 0: speculative, state_indices (N, Ts)
  std::vector<int64_t> si, rsi, hi, na;
  linattn_dtype idx = LINATTN_INT32;
  bool strided_io = true;
  uint64_t seed = 1;

  int64_t N() const { return packed ? static_cast<int64_t>(lens.size()) : B; }
  int64_t T() const { return packed ? std::accumulate(lens.begin(), lens.end(), int64_t{0}) : L; }
  std::string name() const {
    return std::string("C") + std::to_string(C) + "_k" + std::to_string(K) + (cl ? "_cl" : "_cf") + "_" +
           dtype_short_name(act) + "/" + dtype_short_name(state) + (packed ? "_packed" : "_rows") +
           (pool ? "_pool" : "_nopool") + (Ts ? "_spec" + std::to_string(Ts) : "") +
           (strided_pool ? "_padded" : "") + (separate_past ? "_past" : "") + (past_alias ? "_alias" : "") +
           (bias ? "" : "_nobias") + (silu ? "" : "_noact") + (idx == LINATTN_INT64 ? "_i64" : "_i32");
  }
};

// The tensors of a call on the host; a copy runs on each backend.
struct HostCall {
  CausalConvInputs in;
  HostTensor out, present, past, cu, si, rsi, hi, na, flag;
};

HostCall build(const ConvCall& k) {
  CausalConvCase c;
  c.B = k.packed ? 1 : k.B;
  c.C = k.C;
  c.L = k.T();
  c.K = k.K;
  c.bias = k.bias;
  c.has_past = false;
  c.silu = k.silu;
  c.channels_last = k.cl;
  c.act_dtype = k.act;
  c.state_dtype = k.state;
  c.strided = k.strided_io;
  c.seed = k.seed;
  HostCall h;
  h.in = make_inputs(c);
  h.out = HostTensor(k.act, k.cl ? std::vector<int64_t>{c.B, c.L, c.C} : std::vector<int64_t>{c.B, c.C, c.L},
                     k.strided_io);
  h.out.poison();
  std::mt19937_64 rng(k.seed * 7919 + 3);
  std::normal_distribution<double> n01(0.0, 1.0);
  const int64_t rows = k.pool ? k.slots : k.N();
  h.present = HostTensor(k.state, {rows, k.C, k.K - 1}, k.strided_pool);
  h.present.poison();
  if (k.pool) h.present.set_values([&](int64_t) { return n01(rng); });
  if ((k.pool && k.separate_past) || (!k.pool && k.past_rows)) {
    h.past = HostTensor(k.past_dtype, {k.pool ? k.past_slots : rows, k.C, k.K - 1}, k.strided_pool);
    h.past.poison();
    h.past.set_values([&](int64_t) { return n01(rng); });
  }
  if (k.packed) h.cu = index_tensor(k.idx, cu_from_lengths(k.lens));
  if (k.pool) {
    h.si = k.Ts ? index_tensor(k.idx, k.si, {k.N(), k.Ts}) : index_tensor(k.idx, k.si);
  }
  if (!k.rsi.empty()) h.rsi = index_tensor(k.idx, k.rsi);
  if (!k.hi.empty()) h.hi = index_tensor(k.idx, k.hi);
  if (!k.na.empty()) h.na = index_tensor(k.idx, k.na);
  h.flag = HostTensor(LINATTN_INT32, {1});
  static_cast<int32_t*>(h.flag.data())[0] = 77;
  return h;
}

// Arguments over the tensors of `h`; `dev(t)` gives the data pointer a tensor has there.
template <class Dev>
CausalConvArgs args_for(const ConvCall& k, const HostCall& h, linattn_memory mem, Dev dev) {
  auto v = [&](const HostTensor& t) {
    if (!t.present()) return linattn_tensor{};
    return t.view(mem, dev(t));
  };
  CausalConvArgs a = default_causal_conv_args();
  a.activation = k.silu ? LINATTN_ACTIVATION_SILU : LINATTN_ACTIVATION_NONE;
  a.channels_last = k.cl;
  a.input = v(h.in.input);
  a.weight = v(h.in.weight);
  a.bias = v(h.in.bias);
  a.output = v(h.out);
  a.present_state = v(h.present);
  if (h.past.present()) a.past_state = v(h.past);
  if (k.past_alias) a.past_state = a.present_state;
  a.serving.cu_seqlens = v(h.cu);
  a.serving.state_indices = v(h.si);
  a.serving.read_state_indices = v(h.rsi);
  a.serving.has_initial_state = v(h.hi);
  a.serving.num_accepted_tokens = v(h.na);
  a.serving.error_flag = v(h.flag);
  return a;
}

// Device copies of a HostCall: uploads every tensor, downloads the outputs.
struct DeviceCall {
  CudaPlacement pl;
  std::vector<std::pair<const HostTensor*, void*>> map;
  void* ptr(const HostTensor& t) {
    for (auto& [h, d] : map)
      if (h == &t) return d;
    void* d = pl.upload(t);
    map.emplace_back(&t, d);
    return d;
  }
  void back(HostTensor& t) {
    for (auto& [h, d] : map)
      if (h == &t) pl.download(d, t);
  }
};

double out_tolerance(linattn_dtype act) { return act == LINATTN_FLOAT32 ? 2e-5 : 1e-2; }

// Output storage (padding included) against the oracle's; rows in `skipped` must still be NaN.
void expect_outputs(const std::string& what, const HostTensor& got, const HostTensor& want, linattn_dtype act,
                    const std::vector<int64_t>& skipped = {}) {
  int bad = 0;
  for (int64_t i = 0; i < got.storage_elements() && bad < 5; ++i) {
    const double g = got.get(i), w = want.get(i);
    const bool skip = std::find(skipped.begin(), skipped.end(), i) != skipped.end();
    if (skip || std::isnan(w)) {
      if (!std::isnan(g)) {
        ADD_FAILURE() << what << ": output storage " << i << " = " << g << ", expected untouched (NaN)";
        ++bad;
      }
      continue;
    }
    if (!(std::fabs(g - w) <= out_tolerance(act) * (1.0 + std::fabs(w)))) {
      ADD_FAILURE() << what << ": output storage " << i << " = " << g << ", oracle " << w;
      ++bad;
    }
  }
}

void expect_same_bytes(const std::string& what, const HostTensor& got, const HostTensor& want) {
  ASSERT_EQ(got.storage_bytes(), want.storage_bytes());
  if (std::memcmp(got.data(), want.data(), got.storage_bytes()) == 0) return;
  int bad = 0;
  for (int64_t i = 0; i < got.storage_elements() && bad < 5; ++i) {
    const size_t b = dtype_bytes(got.dtype());
    if (std::memcmp(static_cast<const char*>(got.data()) + i * b, static_cast<const char*>(want.data()) + i * b,
                    b) != 0) {
      ADD_FAILURE() << what << ": pool storage element " << i << " = " << got.get(i) << ", oracle "
                    << want.get(i);
      ++bad;
    }
  }
}

// Storage offsets of the output elements of tokens [t0, t0 + len) of batch row b.
std::vector<int64_t> token_offsets(const HostTensor& out, bool cl, int64_t b, int64_t t0, int64_t len) {
  std::vector<int64_t> v;
  const auto& st = out.strides();
  const int64_t C = cl ? out.shape()[2] : out.shape()[1];
  for (int64_t l = t0; l < t0 + len; ++l)
    for (int64_t ch = 0; ch < C; ++ch) v.push_back(b * st[0] + (cl ? l * st[1] + ch * st[2] : ch * st[1] + l * st[2]));
  return v;
}

// Runs `k` on the oracle and on CUDA and compares everything. `oracle_k` (if given) is the call
// the oracle runs instead (the error tests make the offending sequence PAD there); `bad_seq`
// >= 0: CUDA must skip that sequence (its output rows stay NaN) and raise the flag to 1 + it.
void check(const ConvCall& k, const ConvCall* oracle_k = nullptr, int64_t bad_seq = -1,
           Context* ctx = nullptr) {
  SCOPED_TRACE(k.name());
  HostCall ref = build(oracle_k ? *oracle_k : k);
  const CausalConvArgs ra = args_for(oracle_k ? *oracle_k : k, ref, LINATTN_MEMORY_HOST,
                                     [](const HostTensor& t) { return const_cast<void*>(t.data()); });
  const Status rs = causal_conv(reference_context(), ra);
  ASSERT_TRUE(rs.ok()) << "oracle: " << rs.to_string();
  ASSERT_EQ(static_cast<const int32_t*>(ref.flag.data())[0], 0);

  HostCall h = build(k);
  DeviceCall d;
  const CausalConvArgs da = args_for(k, h, LINATTN_MEMORY_CUDA, [&](const HostTensor& t) { return d.ptr(t); });
  const Status s = causal_conv(ctx ? *ctx : cuda_context(), da);
  ASSERT_TRUE(s.ok()) << "cuda: " << s.to_string();
  d.pl.synchronize();
  d.back(h.out);
  d.back(h.present);
  d.back(h.flag);
  if (h.past.present()) {
    HostTensor past0 = h.past;
    d.back(h.past);
    expect_same_bytes("past_state (read only)", h.past, past0);
  }
  std::vector<int64_t> skipped;
  if (bad_seq >= 0) {
    int64_t t0 = 0, b = 0, len = k.T();
    if (k.packed) {
      for (int64_t n = 0; n < bad_seq; ++n) t0 += k.lens[n];
      len = k.lens[bad_seq];
    } else {
      b = bad_seq;
    }
    skipped = token_offsets(h.out, k.cl, b, t0, len);
  }
  expect_outputs("output", h.out, ref.out, k.act, skipped);
  expect_same_bytes("present_state", h.present, ref.present);
  EXPECT_EQ(static_cast<const int32_t*>(h.flag.data())[0], bad_seq >= 0 ? 1 + bad_seq : 0);
}

// A permutation of 0..n-1.
std::vector<int64_t> shuffled(int64_t n, uint64_t seed) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(v.begin(), v.end(), rng);
  return v;
}

// Packed sequences of lengths 0, 1 and < k-1 beside longer ones, a shuffled pool with PAD,
// has_initial_state and read_state_indices (-1 = zeros), padded slot strides, a separate past
// pool in another dtype, an exact alias, both layouts and index dtypes.
ConvCall varlen_pool(int32_t K, bool cl, linattn_dtype act, int variant, uint64_t seed) {
  ConvCall k;
  k.C = variant % 2 ? 300 : 40;  // two channel tiles of the generic kernel / vector groups
  k.K = K;
  k.cl = cl;
  k.act = act;
  k.state = variant == 2 ? LINATTN_BFLOAT16 : act;
  k.lens = {5, 0, 1, 2, 17, 1, 3, 0, 40, 2};
  k.slots = 14;
  const std::vector<int64_t> perm = shuffled(k.slots, seed);
  for (size_t n = 0; n < k.lens.size(); ++n) k.si.push_back(n == 3 || n == 7 ? -1 : perm[n]);
  k.hi = {1, 1, 0, 1, 1, 1, 1, 1, 0, 1};
  k.idx = variant % 2 ? LINATTN_INT64 : LINATTN_INT32;
  k.strided_pool = variant == 1 || variant == 3;
  k.bias = variant != 2;
  k.silu = variant != 3;
  k.seed = seed;
  if (variant >= 2) {
    // Read elsewhere (-1 = zeros): variant 2 from slots of the same pool that no sequence
    // writes, variant 3 from a separate past pool.
    k.separate_past = variant == 3;
    k.past_slots = 9;
    k.past_dtype = LINATTN_FLOAT32;
    const std::vector<int64_t> unwritten{perm[10], perm[11], perm[12], perm[13], perm[3], perm[7]};
    for (size_t n = 0; n < k.lens.size(); ++n) {
      const int64_t r = variant == 3 ? static_cast<int64_t>((n * 5 + 1) % k.past_slots) : unwritten[n % 6];
      k.rsi.push_back(n == 5 ? -1 : r);
    }
  }
  k.past_alias = variant == 1;
  k.strided_io = variant % 2 == 1;  // dense rows keep the vector kernel for channels-last
  return k;
}

TEST(CudaServingConv, VarlenPools) {
  LINATTN_SKIP_WITHOUT_GPU();
  uint64_t seed = 10;
  for (int32_t K : {2, 4})
    for (bool cl : {false, true})
      for (linattn_dtype act : {LINATTN_FLOAT32, LINATTN_BFLOAT16})
        for (int variant = 0; variant < 4; ++variant) check(varlen_pool(K, cl, act, variant, ++seed));
}

// Kernel widths outside the vector kernel's 2..4, and float16.
TEST(CudaServingConv, OtherWidths) {
  LINATTN_SKIP_WITHOUT_GPU();
  uint64_t seed = 100;
  for (int32_t K : {1, 3, 6})
    for (bool cl : {false, true}) {
      ConvCall k = varlen_pool(K, cl, LINATTN_FLOAT16, 1, ++seed);
      check(k);
      k = varlen_pool(K, cl, LINATTN_FLOAT32, 3, ++seed);
      check(k);
    }
}

// Varlen without a pool: one state row per sequence, with and without past rows.
TEST(CudaServingConv, VarlenRows) {
  LINATTN_SKIP_WITHOUT_GPU();
  uint64_t seed = 200;
  for (bool cl : {false, true})
    for (bool past : {false, true}) {
      ConvCall k;
      k.cl = cl;
      k.act = LINATTN_BFLOAT16;
      k.state = LINATTN_FLOAT32;
      k.pool = false;
      k.past_rows = past;
      k.past_dtype = LINATTN_BFLOAT16;
      k.lens = {3, 0, 1, 12, 2};
      k.hi = {1, 1, 0, 1, 1};
      k.seed = ++seed;
      check(k);
    }
}

// Batch rows (no cu_seqlens): decode (one token per row: for 16-bit activations the bulk-copy
// kernel, over two channel tiles at k = 4, or the four-rows-per-thread kernel, B not a multiple
// of 4) and short prefills, through pools and rows.
TEST(CudaServingConv, BatchRows) {
  LINATTN_SKIP_WITHOUT_GPU();
  uint64_t seed = 300;
  for (int64_t L : {1, 3, 9})
    for (linattn_dtype act : {LINATTN_FLOAT32, LINATTN_BFLOAT16})
      for (bool strided : {false, true})
        for (int32_t K : {2, 4}) {
          ConvCall k;
          k.packed = false;
          k.B = 11;
          k.L = L;
          k.C = L == 1 && K == 4 ? 1032 : 64;
          k.K = K;
          k.act = act;
          k.state = act;
          k.strided_pool = strided;
          k.strided_io = L > 1;  // (B, C, 1) dense rows keep the vector kernels
          k.slots = 2 * k.B;
          const std::vector<int64_t> perm = shuffled(k.slots, seed);
          for (int64_t n = 0; n < k.B; ++n) k.si.push_back(n == 4 ? -1 : perm[n]);
          k.hi = {1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0};
          k.idx = strided ? LINATTN_INT64 : LINATTN_INT32;
          k.seed = ++seed;
          check(k);
          k.cl = true;
          k.seed = ++seed;
          check(k);
          // Rows without a pool, has_initial_state only.
          ConvCall r = k;
          r.pool = false;
          r.past_rows = true;
          r.past_dtype = act;
          r.si.clear();
          r.seed = ++seed;
          check(r);
        }
}

// Speculative decoding: windows stored per token (-1 = not stored), the next step resuming from
// the slot of token num_accepted_tokens-1, for every acceptance count; a PAD sequence; packed
// sequences shorter than T_s; rows of one token (the four-row decode kernel).
TEST(CudaServingConv, SpeculativeEveryAcceptanceCount) {
  LINATTN_SKIP_WITHOUT_GPU();
  const int64_t Ts = 4;
  uint64_t seed = 400;
  for (int form = 0; form < 3; ++form)
    for (int64_t acc = 1; acc <= Ts; ++acc)
      for (linattn_dtype act : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
        ConvCall k;
        k.Ts = Ts;
        k.act = act;
        k.state = act;
        k.C = 48;
        k.cl = form == 1;
        k.idx = acc % 2 ? LINATTN_INT32 : LINATTN_INT64;
        int64_t N = 5;
        if (form == 2) {
          k.packed = false;
          k.B = N;
          k.L = acc == 4 ? 1 : Ts;
          k.strided_io = k.L > 1;
        } else {
          k.lens = {4, 2, 0, 4, 1};
        }
        k.slots = N * Ts + 3;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t t = 0; t < Ts; ++t) k.si.push_back(n == 3 ? (t == 0 ? -1 : n * Ts + t) : (t == 2 && n == 1 ? -1 : n * Ts + t));
        for (int64_t n = 0; n < N; ++n) {
          int64_t a = 1 + (acc - 1 + n) % Ts;
          if (k.si[n * Ts + a - 1] < 0) a = 1;  // resume only from a stored window
          k.na.push_back(a);
        }
        k.hi = {1, 1, 1, 1, 0};
        k.strided_pool = acc == 2;
        if (form != 2) k.strided_io = acc % 2 == 0;
        k.seed = ++seed;
        check(k);
      }
}

// One out-of-range index per kind: CUDA skips that sequence (nothing read or written), sets the
// flag to 1 + its number, runs the others; the next good call clears the flag.
TEST(CudaServingConv, IndexErrorsSkipTheSequence) {
  LINATTN_SKIP_WITHOUT_GPU();
  for (bool cl : {false, true})
    for (int kind = 0; kind < 4; ++kind) {
      ConvCall k = varlen_pool(4, cl, LINATTN_BFLOAT16, kind == 1 ? 3 : 0, 500 + kind);
      ConvCall ok = k;
      const int64_t bad = 4;
      ok.si[bad] = -1;  // the oracle runs the offending sequence as PAD, then we expect NaN rows
      if (kind == 0) k.si[bad] = k.slots;
      if (kind == 1) k.rsi[bad] = k.past_slots;
      if (kind == 2) k.si[bad] = -2;
      if (kind == 3) {  // speculative: num_accepted_tokens out of 1..T_s
        k = ConvCall{};
        k.cl = cl;
        k.Ts = 2;
        k.lens = {2, 1, 2, 0, 2};
        k.slots = 12;
        for (int64_t i = 0; i < 10; ++i) k.si.push_back(i);
        k.na = {1, 2, 1, 2, 3};
        ok = k;
        ok.na[bad] = 1;
        ok.si[bad * 2] = -1;
        ok.si[bad * 2 + 1] = -1;
      }
      check(k, &ok, bad);
      check(ok);  // flag back to 0
    }
}

// Rows of one token (the bulk-copy decode kernel, two channel tiles): a bad slot in the middle
// of the batch.
TEST(CudaServingConv, IndexErrorInDecodeGroup) {
  LINATTN_SKIP_WITHOUT_GPU();
  ConvCall k;
  k.packed = false;
  k.B = 9;
  k.L = 1;
  k.C = 1032;
  k.act = k.state = LINATTN_BFLOAT16;
  k.strided_io = false;
  k.slots = 18;
  k.si = shuffled(9, 7);
  ConvCall ok = k;
  ok.si[5] = -1;
  k.si[5] = 18;
  check(k, &ok, 5);
  check(ok);
}

// A pooled decode captured in a CUDA graph (flag clear + kernel), replayed.
TEST(CudaServingConv, GraphCapture) {
  LINATTN_SKIP_WITHOUT_GPU();
  GraphStream g;
  ASSERT_TRUE(g.ok());

  ConvCall k;
  k.packed = false;
  k.B = 6;
  k.L = 1;
  k.C = 256;
  k.act = k.state = LINATTN_BFLOAT16;
  k.strided_io = false;
  k.slots = 12;
  k.si = shuffled(6, 9);
  k.si[2] = -1;
  HostCall ref = build(k);
  const CausalConvArgs ra = args_for(k, ref, LINATTN_MEMORY_HOST,
                                     [](const HostTensor& t) { return const_cast<void*>(t.data()); });
  ASSERT_TRUE(causal_conv(reference_context(), ra).ok());
  // The oracle's second step, from the pool after the first.
  HostCall ref2 = ref;
  ref2.out.poison();
  const CausalConvArgs ra2 = args_for(k, ref2, LINATTN_MEMORY_HOST,
                                      [](const HostTensor& t) { return const_cast<void*>(t.data()); });
  ASSERT_TRUE(causal_conv(reference_context(), ra2).ok());

  HostCall h = build(k);
  DeviceCall d;
  const CausalConvArgs da = args_for(k, h, LINATTN_MEMORY_CUDA, [&](const HostTensor& t) { return d.ptr(t); });
  ASSERT_TRUE(g.capture([&] { return causal_conv(g.ctx(), da); }));
  for (int step = 0; step < 2; ++step) {
    ASSERT_TRUE(g.replay());
    d.back(h.out);
    d.back(h.present);
    d.back(h.flag);
    const HostCall& want = step == 0 ? ref : ref2;
    expect_outputs("graph step " + std::to_string(step), h.out, want.out, k.act);
    expect_same_bytes("graph step " + std::to_string(step), h.present, want.present);
    EXPECT_EQ(static_cast<const int32_t*>(h.flag.data())[0], 0);
  }
}

}  // namespace
}  // namespace linattn::test::serving
