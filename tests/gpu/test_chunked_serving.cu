// The chunked prefill for serving calls (src/cuda/chunked_serving.cu) against the reference
// backend's serving path on the same host inputs (bf16 activations, float32 pools): varlen
// batches with zero-length and partial-chunk sequences, pools with PAD, has_initial_state,
// separate read pools and read slots, padded slot strides, batch rows, prefix checkpoints,
// fused q/k L2 norm and gating, an out-of-range slot (flag, sequence untouched), windows forced
// small so that sequences cross them, and a varlen call of equal lengths against the dense
// chunked prefill on the same data, sequences cut into prefix segments. Outputs and pools are
// NaN-poisoned; slots nobody writes must stay bit-identical.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/check.hpp"
#include "core/serving.hpp"
#include "cpu/serving_support.hpp"
#include "cuda/chunked_options.cuh"
#include "cuda/chunked_prefill.hpp"
#include "cuda/chunked_serving.cuh"
#include "gpu/cuda_support.hpp"

namespace linattn::test::serving {
namespace {

constexpr double kTol = 3e-3;       // whole-call output and written slots (bf16, as the dense chunked tests)
constexpr double kSeqTol = 6e-3;    // one short sequence alone (its error is dominated by Q S0)

LinearAttentionCase dims(int64_t B, int64_t T, uint64_t seed, int Hq = 2, int Hk = 2, int Hkv = 4,
                         int d = 128) {
  LinearAttentionCase c;
  c.B = B;
  c.T = T;
  c.Hq = Hq;
  c.Hk = Hk;
  c.Hkv = Hkv;
  c.dk = d;
  c.dv = 128;
  c.rule = LINATTN_RULE_GATED_DELTA;
  c.act_dtype = LINATTN_BFLOAT16;
  c.state_dtype = LINATTN_FLOAT32;
  c.has_past = false;
  c.seed = seed;
  return c;
}

// Device copies of host tensors (freed at the end of the test).
class Mirror {
 public:
  ~Mirror() {
    for (void* d : owned_) cudaFree(d);
  }
  linattn_tensor up(const HostTensor& t) {
    if (!t.present()) return absent();
    void* d = nullptr;
    const size_t bytes = t.storage_bytes() > 0 ? t.storage_bytes() : 1;
    EXPECT_EQ(cudaMalloc(&d, bytes), cudaSuccess);
    if (t.storage_bytes() > 0) EXPECT_EQ(cudaMemcpy(d, t.data(), t.storage_bytes(), cudaMemcpyHostToDevice), cudaSuccess);
    owned_.push_back(d);
    return t.view(LINATTN_MEMORY_CUDA, d);
  }
  static void down(const linattn_tensor& v, HostTensor& t) {
    ASSERT_EQ(cudaMemcpy(t.data(), v.data, t.storage_bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  }

 private:
  std::vector<void*> owned_;
};

// One serving call: host tensors, what the test knows about its sequences.
struct Call {
  LinearAttentionCase c;
  LinearAttentionInputs in;
  bool packed = true;
  std::vector<int64_t> lens;  // per sequence
  HostTensor out, pool, past;  // pool = present_state; past optional (separate pool or rows)
  HostTensor cu, si, ri, hi, ck;
  std::vector<int64_t> slot, read, init, ckpt;  // as given (empty = absent)
  int64_t interval = 0, M = 0;
  bool l2norm = false, gating = false;
  HostTensor A_log, dt_bias;

  int64_t N() const { return static_cast<int64_t>(lens.size()); }
  int64_t b(int64_t n) const { return packed ? 0 : n; }
  int64_t t0(int64_t n) const {
    int64_t t = 0;
    if (packed)
      for (int64_t m = 0; m < n; ++m) t += lens[m];
    return t;
  }

  void make_index_tensors() {
    if (packed) cu = index_tensor(LINATTN_INT32, cu_from_lengths(lens));
    if (!slot.empty()) si = index_tensor(LINATTN_INT64, slot);
    if (!read.empty()) ri = index_tensor(LINATTN_INT32, read);
    if (!init.empty()) hi = index_tensor(LINATTN_INT32, init);
    if (!ckpt.empty()) ck = index_tensor(LINATTN_INT32, ckpt, {N(), M});
  }

  // The call's arguments over views that `view` gives (host or device copies).
  LinearAttentionArgs args(const std::function<linattn_tensor(const HostTensor&)>& view,
                           const HostTensor& o, const HostTensor& pres, const HostTensor& pst) const {
    LinearAttentionArgs a = default_linear_attention_args();
    a.q_num_heads = c.Hq;
    a.kv_num_heads = c.Hkv;
    a.update_rule = c.rule;
    a.query = view(in.query);
    a.key = view(in.key);
    a.value = view(in.value);
    a.decay = view(in.decay);
    a.beta = view(in.beta);
    a.output = view(o);
    a.present_state = view(pres);
    if (pst.present()) a.past_state = view(pst);
    if (packed) a.serving.cu_seqlens = view(cu);
    if (si.present()) a.serving.state_indices = view(si);
    if (ri.present()) a.serving.read_state_indices = view(ri);
    if (hi.present()) a.serving.has_initial_state = view(hi);
    if (ck.present()) {
      a.serving.checkpoint_interval = interval;
      a.serving.checkpoint_indices = view(ck);
    }
    if (l2norm) a.serving.qk_l2norm = 1;
    if (gating) {
      a.serving.fused_gating = 1;
      a.serving.A_log = view(A_log);
      a.serving.dt_bias = view(dt_bias);
    }
    return a;
  }
};

struct Result {
  HostTensor out, pool, past;
  int32_t flag = -7;
};

// The reference backend's serving path on host copies.
Result run_reference(const Call& k) {
  Result r{k.out, k.pool, k.past};
  const LinearAttentionArgs a =
      k.args([](const HostTensor& t) { return t.present() ? t.view() : absent(); }, r.out, r.pool, r.past);
  const Status s = linear_attention(reference_context(), a);
  EXPECT_TRUE(s.ok()) << "reference: " << s.to_string();
  return r;
}

using Layout = detail::cuda::ChunkedServingOptions::Layout;

// The CUDA serving call: window = 0 through the public API (the library's choice), window > 0
// through the chunked serving entry with windows of that many chunks and the given numbering
// of the chunks (chunked_layout.cuh), the P o Q K^T warpgroup or not, and the form of the final
// pass (ChunkedOptions::whole_head: -1 the rule, 0 slabs, 1 whole heads), and prefix segments
// (ChunkedOptions::prefix: -1 the rule, 0 none, 1 the longest sequences of every window cut into
// `segments`).
Result run_cuda(const Call& k, int64_t window, Layout layout = Layout::kTimeMajor, bool p_warpgroup = true,
                int whole_head = -1, int prefix = -1, int segments = 0) {
  Result r{k.out, k.pool, k.past};
  Mirror m;
  const linattn_tensor dout = m.up(r.out), dpool = m.up(r.pool);
  const linattn_tensor dpast = r.past.present() ? m.up(r.past) : absent();
  HostTensor flag(LINATTN_INT32, {1});
  static_cast<int32_t*>(flag.data())[0] = -5;  // the call must clear it
  const linattn_tensor dflag = m.up(flag);
  LinearAttentionArgs a = k.args([&](const HostTensor& t) { return m.up(t); }, r.out, r.pool, r.past);
  a.output = dout;
  a.present_state = dpool;
  if (r.past.present()) a.past_state = dpast;
  a.serving.error_flag = dflag;

  detail::ServingLinearAttention s;
  const detail::Status cs = detail::check_linear_attention_serving(a, LINATTN_BACKEND_CUDA, &s);
  EXPECT_TRUE(cs.ok()) << cs.message();
  EXPECT_TRUE(detail::cuda::chunked_prefill_serving_supports(s)) << "not on the chunked path";
  if (window == 0) {
    const Status st = linear_attention(cuda_context(), a);
    EXPECT_TRUE(st.ok()) << st.to_string();
  } else {
    detail::cuda::ChunkedServingOptions o;
    o.layout = layout;
    o.split_state = !s.p.gated;
    o.max_window_chunks = window;
    o.p_warpgroup = p_warpgroup;
    o.whole_head = whole_head;
    o.prefix = prefix;
    o.segments = segments;
    detail::Exec e;
    e.workspace_bytes = detail::cuda::chunked_prefill_serving_workspace_bytes_with(s, o);
    EXPECT_EQ(cudaMalloc(&e.workspace, e.workspace_bytes > 0 ? e.workspace_bytes : 1), cudaSuccess);
    // Poisoned (NaN in every 16-bit and float32 field): the call may read only what it wrote.
    EXPECT_EQ(cudaMemset(e.workspace, 0xff, e.workspace_bytes), cudaSuccess);
    EXPECT_EQ(cudaMemset(dflag.data, 0, 4), cudaSuccess);
    const detail::Status st = detail::cuda::chunked_prefill_serving_with(s, e, o);
    EXPECT_TRUE(st.ok()) << st.message();
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    cudaFree(e.workspace);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  Mirror::down(dout, r.out);
  Mirror::down(dpool, r.pool);
  Mirror::down(dflag, flag);
  r.flag = static_cast<int32_t*>(flag.data())[0];
  return r;
}

// Compares a CUDA result with the reference: outputs per sequence (PAD rows exactly zero, the
// rows of `bad` untouched), the slots or rows written, every other slot bit-identical to before.
void compare(const Call& k, const Result& ref, const Result& dev, int64_t bad, double tol,
             const char* what) {
  const int64_t N = k.N();
  std::vector<double> all_got, all_want;
  std::set<int64_t> written;
  for (int64_t n = 0; n < N; ++n) {
    const std::vector<double> got = token_rows(dev.out, k.b(n), k.t0(n), k.lens[n]);
    if (n == bad) {
      for (double x : got) ASSERT_TRUE(std::isnan(x)) << what << ": skipped sequence " << n << " output written";
      continue;
    }
    const bool pad = !k.slot.empty() && k.slot[n] < 0;
    if (pad) {
      for (double x : got) ASSERT_EQ(x, 0.0) << what << ": PAD sequence " << n << " output";
      continue;
    }
    const std::vector<double> want = token_rows(ref.out, k.b(n), k.t0(n), k.lens[n]);
    all_got.insert(all_got.end(), got.begin(), got.end());
    all_want.insert(all_want.end(), want.begin(), want.end());
    if (k.lens[n] > 0) {
      EXPECT_LT(rel_frobenius(got, want), kSeqTol) << what << ": sequence " << n << " len " << k.lens[n];
    }
    written.insert(k.slot.empty() ? n : k.slot[n]);
    for (int64_t j = 1; j <= k.M && j * k.interval <= k.lens[n]; ++j)
      if (k.ckpt[n * k.M + j - 1] >= 0) written.insert(k.ckpt[n * k.M + j - 1]);
  }
  const double e_out = rel_frobenius(all_got, all_want);
  EXPECT_LT(e_out, tol) << what << ": output";
  double e_state = 0;
  for (int64_t s = 0; s < k.pool.shape()[0]; ++s) {
    const State got = read_slot(dev.pool, s, false, k.c);
    if (written.count(s)) {
      e_state = std::max(e_state, rel_frobenius(got, read_slot(ref.pool, s, false, k.c)));
    } else {
      const State before = read_slot(k.pool, s, false, k.c);
      ASSERT_EQ(std::memcmp(got.data(), before.data(), got.size() * sizeof(double)), 0)
          << what << ": slot " << s << " changed but nobody writes it";
    }
  }
  EXPECT_LT(e_state, tol) << what << ": state";
  EXPECT_TRUE(dev.pool.padding_is_nan()) << what << ": a write landed in the slot padding";
  EXPECT_TRUE(dev.out.padding_is_nan()) << what << ": a write landed in the output padding";
  std::printf("  %-40s output %.3e  state %.3e\n", what, e_out, e_state);
}

HostTensor output_for(const LinearAttentionCase& c) {
  HostTensor o(c.act_dtype, {c.B, c.T, int64_t{c.Hout()} * c.dv}, true);
  o.poison();
  return o;
}

Call varlen_pool_call(uint64_t seed) {
  Call k;
  k.lens = {0, 1, 63, 64, 65, 200, 1000, 0, 130};
  int64_t T = 0;
  for (int64_t l : k.lens) T += l;
  k.c = dims(1, T, seed);
  k.in = make_inputs(k.c);
  k.out = output_for(k.c);
  k.pool = make_pool(k.c, 12, false, true, seed + 1);
  // Slot 5 is read and written in place by a zero-length sequence (nothing moves); sequence 7
  // (zero tokens, no initial state) writes zeros to slot 10; sequence 3 is PAD.
  k.slot = {5, 0, 9, -1, 2, 7, 4, 10, 11};
  k.init = {1, 0, 1, 1, 1, 0, 1, 0, 1};
  k.make_index_tensors();
  return k;
}

TEST(ChunkedServing, VarlenPoolInPlace) {
  LINATTN_SKIP_WITHOUT_GPU();
  const Call k = varlen_pool_call(101);
  const Result ref = run_reference(k);
  const Result dev = run_cuda(k, 0);
  EXPECT_EQ(dev.flag, 0);
  compare(k, ref, dev, -1, kTol, "varlen pool (library)");
  // Windows shorter than the first time step (3 and 1 chunks against 6 sequences) and
  // longer (8), in both numberings.
  for (int64_t window : {3, 1, 8}) {
    for (Layout layout : {Layout::kTimeMajor, Layout::kSequenceMajor}) {
      const Result d = run_cuda(k, window, layout);
      EXPECT_EQ(d.flag, 0);
      const std::string what = "varlen pool (window " + std::to_string(window) +
                               (layout == Layout::kTimeMajor ? ", time-major)" : ", sequence-major)");
      compare(k, ref, d, -1, kTol, what.c_str());
    }
  }
  // P o Q K^T formed by the outputs warpgroup instead of the final pass's fourth one (slabs).
  const Result d = run_cuda(k, 3, Layout::kTimeMajor, false, 0);
  EXPECT_EQ(d.flag, 0);
  compare(k, ref, d, -1, kTol, "varlen pool (window 3, no P warpgroup)");
  // Both forms of the final pass, whole heads and slabs, across windows in both numberings.
  for (int whole_head : {1, 0}) {
    for (int64_t window : {3, 1}) {
      for (Layout layout : {Layout::kTimeMajor, Layout::kSequenceMajor}) {
        const Result dh = run_cuda(k, window, layout, true, whole_head);
        EXPECT_EQ(dh.flag, 0);
        const std::string what = std::string("varlen pool (") + (whole_head ? "whole heads" : "slabs") +
                                 ", window " + std::to_string(window) +
                                 (layout == Layout::kTimeMajor ? ", time-major)" : ", sequence-major)");
        compare(k, ref, dh, -1, kTol, what.c_str());
      }
    }
  }
}

// A separate read pool (f32, padded) and read_state_indices with -1, GQA with two query heads
// per kv head, d_k = 64.
TEST(ChunkedServing, SeparateReadPoolAndReadSlots) {
  LINATTN_SKIP_WITHOUT_GPU();
  Call k;
  k.lens = {300, 64, 0, 129, 77};
  k.c = dims(1, 570, 202, /*Hq=*/4, /*Hk=*/2, /*Hkv=*/2, /*d=*/64);
  k.in = make_inputs(k.c);
  k.out = output_for(k.c);
  k.pool = make_pool(k.c, 7, false, true, 203);
  k.past = make_pool(k.c, 5, false, true, 204);
  k.slot = {6, 0, 3, 1, 4};
  k.read = {2, -1, 4, 0, 0};
  k.init = {1, 1, 1, 1, 0};
  k.make_index_tensors();
  const Result ref = run_reference(k);
  for (int64_t window : {0, 2}) {
    const Result dev = run_cuda(k, window);
    EXPECT_EQ(dev.flag, 0);
    compare(k, ref, dev, -1, kTol, window == 0 ? "read pool (library)" : "read pool (window 2)");
  }
}

// Batch rows without cu_seqlens: a pool, and per-row states with has_initial_state.
TEST(ChunkedServing, BatchRows) {
  LINATTN_SKIP_WITHOUT_GPU();
  {
    Call k;
    k.packed = false;
    k.lens = {150, 150, 150};
    k.c = dims(3, 150, 301);
    k.in = make_inputs(k.c);
    k.out = output_for(k.c);
    k.pool = make_pool(k.c, 5, false, true, 302);
    k.slot = {4, -1, 1};
    k.init = {1, 1, 0};
    k.make_index_tensors();
    const Result ref = run_reference(k);
    const Result dev = run_cuda(k, 2);
    EXPECT_EQ(dev.flag, 0);
    compare(k, ref, dev, -1, kTol, "rows, pool");
  }
  {
    Call k;
    k.packed = false;
    k.lens = {200, 200};
    k.c = dims(2, 200, 303);
    k.in = make_inputs(k.c);
    k.out = output_for(k.c);
    k.past = make_pool(k.c, 2, false, true, 304);
    k.pool = make_pool(k.c, 2, false, false, 305);
    k.init = {0, 1};
    k.make_index_tensors();
    const Result ref = run_reference(k);
    const Result dev = run_cuda(k, 0);
    EXPECT_EQ(dev.flag, 0);
    compare(k, ref, dev, -1, kTol, "rows, past/present rows");
  }
}

// Prefix checkpoints every 64 and every 128 tokens, across windows.
TEST(ChunkedServing, Checkpoints) {
  LINATTN_SKIP_WITHOUT_GPU();
  for (int64_t interval : {64, 128}) {
    Call k;
    k.lens = {200, 64, 10, 300};
    k.c = dims(1, 574, 400 + interval);
    k.in = make_inputs(k.c);
    k.out = output_for(k.c);
    k.pool = make_pool(k.c, 20, false, true, 401);
    k.slot = {0, 1, 2, 3};
    k.interval = interval;
    k.M = 4;
    k.ckpt = {4, -1, 5, 6, 7, 8, 9, -1, 10, 11, 12, 13, 14, 15, -1, 16};
    k.make_index_tensors();
    const Result ref = run_reference(k);
    for (int64_t window : {0, 3}) {
      for (Layout layout : {Layout::kTimeMajor, Layout::kSequenceMajor}) {
        if (window == 0 && layout == Layout::kSequenceMajor) continue;
        for (int whole_head : {1, 0}) {
          if (window == 0 && whole_head == 0) continue;  // the library's own choice above
          const Result dev = run_cuda(k, window, layout, true, window == 0 ? -1 : whole_head);
          EXPECT_EQ(dev.flag, 0);
          compare(k, ref, dev, -1, kTol, interval == 64 ? "checkpoints every 64" : "checkpoints every 128");
        }
      }
    }
  }
}

// q/k L2 norm and gates from raw projections inside the call. The device keeps the gates in
// float32 where the reference rounds them to bf16: a slightly looser bound.
TEST(ChunkedServing, FusedL2NormAndGating) {
  LINATTN_SKIP_WITHOUT_GPU();
  Call k;
  k.lens = {90, 1, 250, 64};
  k.c = dims(1, 405, 501);
  k.in = make_inputs(k.c);
  std::mt19937_64 rng(502);
  std::normal_distribution<double> n01(0.0, 1.0);
  for (HostTensor* t : {&k.in.query, &k.in.key}) t->set_values([&](int64_t) { return 2.0 * n01(rng); });
  k.in.decay.set_values([&](int64_t) { return n01(rng) - 2.0; });
  k.in.beta.set_values([&](int64_t) { return n01(rng); });
  k.A_log = HostTensor(LINATTN_FLOAT32, {k.c.Hkv});
  k.dt_bias = HostTensor(LINATTN_FLOAT32, {k.c.Hkv});
  k.A_log.set_values([&](int64_t) { return std::log(0.5 + std::abs(n01(rng))); });
  k.dt_bias.set_values([&](int64_t) { return 0.5 * n01(rng); });
  k.l2norm = k.gating = true;
  k.out = output_for(k.c);
  k.pool = make_pool(k.c, 6, false, true, 503);
  k.slot = {3, 0, 5, 1};
  k.make_index_tensors();
  const Result ref = run_reference(k);
  const Result dev = run_cuda(k, 0);
  EXPECT_EQ(dev.flag, 0);
  compare(k, ref, dev, -1, 5e-3, "fused l2norm + gating");
}

// An out-of-range slot: the flag names the sequence, nothing of it is read or written, the
// others run as if it were absent.
TEST(ChunkedServing, OutOfRangeSlotRaisesFlag) {
  LINATTN_SKIP_WITHOUT_GPU();
  Call k = varlen_pool_call(601);
  Call ok = k;
  k.slot[5] = 12;  // 12 slots: 0..11
  k.make_index_tensors();
  ok.slot[5] = -1;  // the reference: the same call with that sequence PAD
  ok.make_index_tensors();
  const Result ref = run_reference(ok);
  const Result dev = run_cuda(k, 0);
  EXPECT_EQ(dev.flag, 1 + 5);
  Call cmp = k;
  cmp.slot[5] = -1;  // for the slot bookkeeping: sequence 5 writes nothing
  compare(cmp, ref, dev, 5, kTol, "out-of-range slot");
}

// Whether two results are the same bits (outputs, pools and their padding).
void expect_identical(const Result& a, const Result& b, const std::string& what) {
  EXPECT_EQ(std::memcmp(a.out.data(), b.out.data(), a.out.storage_bytes()), 0) << what << ": output differs";
  EXPECT_EQ(std::memcmp(a.pool.data(), b.pool.data(), a.pool.storage_bytes()), 0) << what << ": pool differs";
}

// Sequences cut into prefix segments (chunked_layout.cuh), every segment's chain walking the
// chunks before it alone from a copy of the start state: forced to 2, 3 and 4 segments per
// sequence of a window, in one window (start states read in place from the pool, zeros, PAD
// and zero-length sequences beside them) and across windows of 3 chunks (from the carry), on
// both forms of the final pass; with checkpoints; from a separate read pool with d_k = 64 and
// two query heads per state (slabs); and the library's rule on a lone long sequence. The chain
// before a segment runs exactly the uncut walk's arithmetic, so every result equals the uncut
// call bit for bit, and it matches the reference.
TEST(ChunkedServing, PrefixSegments) {
  LINATTN_SKIP_WITHOUT_GPU();
  const auto check = [](const Call& k, const Result& ref, int64_t window, int whole_head,
                        std::initializer_list<int> cuts, const std::string& name) {
    const Result whole = run_cuda(k, window, Layout::kTimeMajor, true, whole_head, 0);
    EXPECT_EQ(whole.flag, 0);
    for (int n : cuts) {
      const Result d = run_cuda(k, window, Layout::kTimeMajor, true, whole_head, 1, n);
      EXPECT_EQ(d.flag, 0);
      const std::string what = name + " (" + std::to_string(n) + " segments, window " + std::to_string(window) +
                               (whole_head == 1 ? ", whole heads)" : whole_head == 0 ? ", slabs)" : ")");
      compare(k, ref, d, -1, kTol, what.c_str());
      expect_identical(whole, d, what);
    }
  };
  {
    const Call k = varlen_pool_call(801);
    const Result ref = run_reference(k);
    for (int whole_head : {1, 0}) {
      for (int64_t window : {64, 3}) check(k, ref, window, whole_head, {2, 3, 4}, "varlen pool");
    }
  }
  {
    Call k;
    k.lens = {200, 64, 10, 700};
    k.c = dims(1, 974, 811);
    k.in = make_inputs(k.c);
    k.out = output_for(k.c);
    k.pool = make_pool(k.c, 24, false, true, 812);
    k.slot = {0, 1, 2, 3};
    k.interval = 64;
    k.M = 11;
    k.ckpt.assign(44, -1);
    for (int64_t i = 0; i < 44; i += 3) k.ckpt[i] = 4 + i / 3;  // every third checkpoint kept
    k.ckpt[3 * 11 + 10] = 20;  // past the long sequence's end (704 > 700 tokens): never written
    k.make_index_tensors();
    const Result ref = run_reference(k);
    for (int whole_head : {1, 0}) check(k, ref, 64, whole_head, {3}, "checkpoints");
    check(k, ref, 4, 1, {4}, "checkpoints");
  }
  {
    Call k;
    k.lens = {300, 64, 0, 129, 77};
    k.c = dims(1, 570, 821, /*Hq=*/4, /*Hk=*/2, /*Hkv=*/2, /*d=*/64);
    k.in = make_inputs(k.c);
    k.out = output_for(k.c);
    k.pool = make_pool(k.c, 7, false, true, 822);
    k.past = make_pool(k.c, 5, false, true, 823);
    k.slot = {6, 0, 3, 1, 4};
    k.read = {2, -1, 4, 0, 0};
    k.init = {1, 1, 1, 1, 0};
    k.make_index_tensors();
    const Result ref = run_reference(k);
    for (int64_t window : {64, 2}) check(k, ref, window, -1, {2, 4}, "read pool");
  }
  {
    // One sequence of 24 chunks on 4 value heads: the rule cuts it (whole heads, 33 sequences'
    // worth of SMs on the H100: four segments).
    Call k;
    k.lens = {1500};
    k.c = dims(1, 1500, 831);
    k.in = make_inputs(k.c);
    k.out = output_for(k.c);
    k.pool = make_pool(k.c, 3, false, true, 832);
    k.slot = {1};
    k.make_index_tensors();
    const Result ref = run_reference(k);
    const Result lib = run_cuda(k, 0);
    EXPECT_EQ(lib.flag, 0);
    compare(k, ref, lib, -1, kTol, "lone sequence (library)");
    expect_identical(run_cuda(k, 64, Layout::kTimeMajor, true, -1, 0), lib, "lone sequence (library)");
  }
}

// A varlen call of equal lengths equals the dense chunked prefill on the same sequences.
TEST(ChunkedServing, EqualLengthsMatchDenseChunked) {
  LINATTN_SKIP_WITHOUT_GPU();
  const int64_t B = 4, L = 300;
  Call k;
  k.lens = std::vector<int64_t>(B, L);
  k.c = dims(1, B * L, 701);
  k.c.strided = false;
  k.in = make_inputs(k.c);
  k.out = output_for(k.c);
  k.pool = make_pool(k.c, B, false, false, 702);
  k.slot = {0, 1, 2, 3};
  k.make_index_tensors();
  const Result dev = run_cuda(k, 0);
  EXPECT_EQ(dev.flag, 0);

  // Dense: the same memory viewed as (B, L, ...), past = the pool before, present separate.
  Mirror m;
  LinearAttentionArgs a = default_linear_attention_args();
  a.q_num_heads = k.c.Hq;
  a.kv_num_heads = k.c.Hkv;
  a.update_rule = k.c.rule;
  auto as_rows = [&](const HostTensor& t) {
    linattn_tensor v = m.up(t);
    v.shape[0] = B;
    v.shape[1] = L;
    v.strides[0] = L * v.strides[1];
    return v;
  };
  a.query = as_rows(k.in.query);
  a.key = as_rows(k.in.key);
  a.value = as_rows(k.in.value);
  a.decay = as_rows(k.in.decay);
  a.beta = as_rows(k.in.beta);
  HostTensor out = k.out, pres = k.pool;
  a.output = as_rows(out);
  a.past_state = m.up(k.pool);
  a.present_state = m.up(pres);
  detail::LinearAttentionParams p;
  const detail::Status cs = detail::check_linear_attention(a, LINATTN_BACKEND_CUDA, &p);
  ASSERT_TRUE(cs.ok()) << cs.message();
  detail::Exec e;
  e.workspace_bytes = detail::cuda::chunked_prefill_workspace_bytes(p);
  ASSERT_EQ(cudaMalloc(&e.workspace, e.workspace_bytes), cudaSuccess);
  const detail::Status st = detail::cuda::chunked_prefill(p, e);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(e.workspace);
  Mirror::down(a.output, out);
  Mirror::down(a.present_state, pres);
  const double eo = rel_frobenius(out.values(), dev.out.values());
  double es = 0;
  for (int64_t n = 0; n < B; ++n)
    es = std::max(es, rel_frobenius(read_slot(pres, n, false, k.c), read_slot(dev.pool, n, false, k.c)));
  std::printf("  varlen vs dense chunked: output %.3e state %.3e\n", eo, es);
  EXPECT_LT(eo, 1e-6);
  EXPECT_LT(es, 1e-6);
}

}  // namespace
}  // namespace linattn::test::serving
