// Serving extensions of LinearAttention on the CUDA backend (docs/SERVING.md) against the host
// ground truth: every call runs on the reference backend (the float64 oracle behind the host
// serving adapter, src/core/serving.cpp) with host tensors and on CUDA with device copies of
// the same bytes; the outputs and EVERY pool slot are compared. Outputs start poisoned (NaN);
// pools start with random states; a slot that the oracle leaves untouched must come back
// bit-identical from the GPU (slot padding included), as must every padding element.
//
// Covered: varlen with zero-length sequences (int32 and int64 indices), per-sequence rows,
// pools with PAD, read_state_indices, has_initial_state, padded slot strides, a separate past
// pool and in-place pools, speculative decoding with every acceptance count, checkpoints,
// value-major states, fused q/k L2 norm and gating (delta and non-delta rules), float32 and
// bfloat16 activations and states, the reference decode shape through a pool (the vectorised
// phased kernel at B = 64 and the decode kernel at B = 4), small odd head dims (the general
// kernel), index errors (error_flag = 1 + n, that sequence untouched, the others correct; 0
// after a good call) and a serving decode captured in a CUDA graph and replayed.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "../cpu/serving_support.hpp"
#include "gpu/cuda_support.hpp"

namespace linattn::test::serving {
namespace {

// One serving call as host tensors: the inputs of `c` (past_state of `in` unused), the pools or
// state rows, the output and the serving fields.
struct ServingCall {
  LinearAttentionCase c;
  LinearAttentionInputs in;
  HostTensor past, present, out, flag;
  bool past_is_present = false;  // past_state is present_state itself (an exact alias)
  HostTensor cu, si, rsi, his, nat, ck, A_log, dt_bias;
  int64_t ckpt_interval = 0;
  bool vm = false, l2 = false, gating = false;
};

struct Outcome {
  Status status;
  HostTensor present, out, flag;
};

// A pool view of c.Hkv heads out of a tensor that may hold more (a padded slot stride).
linattn_tensor pool_view(const linattn_tensor& v, const LinearAttentionCase& c) {
  return v.shape[1] > c.Hkv ? slice_view(v, 1, 0, c.Hkv) : v;
}

template <class View>
LinearAttentionArgs build_args(const ServingCall& s, View view) {
  const LinearAttentionCase& c = s.c;
  LinearAttentionArgs a = default_linear_attention_args();
  a.q_num_heads = c.Hq;
  a.kv_num_heads = c.Hkv;
  a.update_rule = c.rule;
  a.query = view(s.in.query);
  a.key = view(s.in.key);
  a.value = view(s.in.value);
  a.decay = view(s.in.decay);
  a.beta = view(s.in.beta);
  a.output = view(s.out);
  a.present_state = pool_view(view(s.present), c);
  if (s.past_is_present) a.past_state = a.present_state;
  else if (s.past.present()) a.past_state = pool_view(view(s.past), c);
  ServingArgs& v = a.serving;
  v.cu_seqlens = view(s.cu);
  v.state_indices = view(s.si);
  v.read_state_indices = view(s.rsi);
  v.has_initial_state = view(s.his);
  v.num_accepted_tokens = view(s.nat);
  v.checkpoint_indices = view(s.ck);
  v.checkpoint_interval = s.ckpt_interval;
  v.error_flag = view(s.flag);
  v.state_layout = s.vm ? LINATTN_STATE_VALUE_MAJOR : LINATTN_STATE_KEY_MAJOR;
  v.qk_l2norm = s.l2 ? 1 : 0;
  v.fused_gating = s.gating ? 1 : 0;
  v.A_log = view(s.A_log);
  v.dt_bias = view(s.dt_bias);
  return a;
}

Outcome run_reference(const ServingCall& s) {
  Outcome r{Status(), s.present, s.out, s.flag};
  auto view = [&](const HostTensor& t) -> linattn_tensor {
    if (!t.present()) return absent();
    if (&t == &s.present) return r.present.view();
    if (&t == &s.out) return r.out.view();
    if (&t == &s.flag) return r.flag.view();
    return t.view();
  };
  r.status = linear_attention(reference_context(), build_args(s, view));
  return r;
}

// Device copies of every tensor of a call, and the args over them.
struct DeviceCall {
  CudaPlacement pl;
  std::map<const HostTensor*, void*> dev;
  LinearAttentionArgs args{};

  explicit DeviceCall(const ServingCall& s) {
    auto view = [&](const HostTensor& t) -> linattn_tensor {
      if (!t.present()) return absent();
      auto it = dev.find(&t);
      if (it == dev.end()) it = dev.emplace(&t, pl.upload(t)).first;
      return t.view(LINATTN_MEMORY_CUDA, it->second);
    };
    args = build_args(s, view);
  }
  void fetch(const ServingCall& s, Outcome& o) {
    o.present = s.present;
    o.out = s.out;
    o.flag = s.flag;
    pl.download(dev.at(&s.present), o.present);
    pl.download(dev.at(&s.out), o.out);
    if (s.flag.present()) pl.download(dev.at(&s.flag), o.flag);
  }
};

Outcome run_cuda(const ServingCall& s, Context& ctx) {
  DeviceCall d(s);
  Outcome o;
  o.status = linear_attention(ctx, d.args);
  d.pl.synchronize();
  d.fetch(s, o);
  return o;
}

struct Tol {
  double out = 5e-5, state = 5e-5;
};

// Storage bytes of slot `slot` (its padding included).
std::vector<unsigned char> slot_bytes(const HostTensor& t, int64_t slot) {
  const size_t e = dtype_bytes(t.dtype());
  const int64_t s0 = t.strides()[0];
  const int64_t end = std::min(t.storage_elements(), (slot + 1) * s0);
  const unsigned char* p = static_cast<const unsigned char*>(t.data());
  return std::vector<unsigned char>(p + slot * s0 * e, p + end * e);
}

// `got` against `want` (the oracle's result) for a call that started from `s`.
void expect_same(const ServingCall& s, const Outcome& want, const Outcome& got, Tol tol,
                 const std::string& what) {
  ASSERT_TRUE(got.status.ok()) << what << ": " << got.status.to_string();
  // Output: NaN exactly where the oracle left the poison, close elsewhere.
  const std::vector<double> w = want.out.values(), g = got.out.values();
  std::vector<double> wv, gv;
  int64_t nan_mismatch = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (std::isnan(w[i]) != std::isnan(g[i])) ++nan_mismatch;
    if (!std::isnan(w[i])) {
      wv.push_back(w[i]);
      gv.push_back(g[i]);
    }
  }
  EXPECT_EQ(nan_mismatch, 0) << what << ": output elements written/unwritten differently";
  EXPECT_LE(rel_frobenius(gv, wv), tol.out) << what << ": output";
  EXPECT_TRUE(got.out.padding_is_nan()) << what << ": a write landed in the output padding";
  // Pool slots (or rows): untouched ones bit-identical, the others close.
  const int64_t slots = s.present.shape()[0];
  for (int64_t k = 0; k < slots; ++k) {
    const auto before = slot_bytes(s.present, k);
    if (slot_bytes(want.present, k) == before) {
      EXPECT_TRUE(slot_bytes(got.present, k) == before) << what << ": slot " << k << " was touched";
      continue;
    }
    EXPECT_LE(rel_frobenius(read_slot(got.present, k, s.vm, s.c), read_slot(want.present, k, s.vm, s.c)),
              tol.state)
        << what << ": slot " << k;
    // Everything of a written slot outside its block view (padding, unused heads) unchanged.
    const auto gb = slot_bytes(got.present, k);
    const auto& st = s.present.strides();
    const int64_t rows = s.present.shape()[2], cols = s.present.shape()[3];
    const size_t e = dtype_bytes(s.present.dtype());
    std::vector<bool> in_view(before.size() / e, false);
    for (int64_t h = 0; h < s.c.Hkv; ++h)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const int64_t off = h * st[1] + i * st[2] + j;
          if (off < static_cast<int64_t>(in_view.size())) in_view[off] = true;
        }
    int64_t stray = 0;
    for (size_t x = 0; x < in_view.size(); ++x)
      if (!in_view[x] && std::memcmp(&gb[x * e], &before[x * e], e) != 0) ++stray;
    EXPECT_EQ(stray, 0) << what << ": writes outside the block view of slot " << k;
  }
}

void check(const ServingCall& s, Tol tol, const std::string& what, Context* ctx = nullptr) {
  const Outcome want = run_reference(s);
  ASSERT_TRUE(want.status.ok()) << what << " (oracle): " << want.status.to_string();
  const Outcome got = run_cuda(s, ctx ? *ctx : cuda_context());
  expect_same(s, want, got, tol, what);
  if (s.flag.present()) {
    EXPECT_EQ(static_cast<const int32_t*>(got.flag.data())[0], 0) << what << ": error_flag";
  }
}

LinearAttentionCase reference_shape(int64_t B, uint64_t seed) {
  LinearAttentionCase c;
  c.B = B;
  c.T = 1;
  c.Hq = 16;
  c.Hk = 16;
  c.Hkv = 32;
  c.dk = 128;
  c.dv = 128;
  c.act_dtype = LINATTN_BFLOAT16;
  c.has_past = false;
  c.seed = seed;
  return c;
}

HostTensor poisoned_output(const LinearAttentionCase& c, bool strided = true) {
  HostTensor o(c.act_dtype, {c.B, c.T, int64_t{c.Hout()} * c.dv}, strided);
  o.poison();
  return o;
}

HostTensor flag_tensor(int32_t initial) {
  HostTensor f(LINATTN_INT32, {1});
  static_cast<int32_t*>(f.data())[0] = initial;
  return f;
}

// A pool of `slots` random states; padded_heads > 0 adds that many unused heads per slot (a
// padded slot stride that keeps vector alignment), `strided` pads every dim unevenly.
HostTensor random_pool(const LinearAttentionCase& c, int64_t slots, bool vm, bool strided,
                       uint64_t seed, int padded_heads = 0) {
  LinearAttentionCase w = c;
  w.Hkv = c.Hkv + padded_heads;
  HostTensor p = make_pool(w, slots, vm, strided, seed);
  const auto& st = p.strides();
  for (int64_t s = 0; s < slots; ++s)  // the extra heads are padding: NaN
    for (int64_t h = c.Hkv; h < w.Hkv; ++h)
      for (int64_t i = 0; i < p.shape()[2]; ++i)
        for (int64_t j = 0; j < p.shape()[3]; ++j) p.set(s * st[0] + h * st[1] + i * st[2] + j, std::nan(""));
  return p;
}

Tol tol_for(const LinearAttentionCase& c, bool fused = false) {
  Tol t;
  auto one = [&](linattn_dtype d) { return d == LINATTN_FLOAT32 ? 5e-5 : dtype_tolerance(d); };
  t.out = one(c.act_dtype);
  t.state = one(c.state_dtype);
  if (fused && c.act_dtype != LINATTN_FLOAT32) {
    // The oracle rounds the normalised q, k and the gates to the 16-bit activation dtype
    // before its recurrence; the kernel keeps them in float32 registers.
    t.out = std::max(t.out, 2e-2);
    t.state = std::max(t.state, 2e-2);
  }
  return t;
}

void make_fused(ServingCall& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  for (HostTensor* t : {&s.in.query, &s.in.key, &s.in.decay, &s.in.beta})
    if (t->present()) t->set_values([&](int64_t) { return 2.0 * n01(rng); });  // raw projections
  s.A_log = HostTensor(LINATTN_FLOAT32, {s.c.Hkv});
  s.dt_bias = HostTensor(LINATTN_BFLOAT16, {s.c.Hkv});
  s.A_log.set_values([&](int64_t) { return std::log(0.5 + std::abs(n01(rng))); });
  s.dt_bias.set_values([&](int64_t) { return n01(rng); });
  s.l2 = true;
  s.gating = true;
}

class CudaServing : public ::testing::Test {
 protected:
  void SetUp() override { LINATTN_SKIP_WITHOUT_GPU(); }
};

// Packed sequences (zero-length ones included), one state row per sequence, has_initial_state;
// the int64 run with standard GQA, per-key-dim decay and a shared beta.
TEST_F(CudaServing, VarlenRows) {
  for (linattn_dtype idx : {LINATTN_INT32, LINATTN_INT64}) {
    const std::vector<int64_t> lens{0, 1, 63, 65, 130, 5};
    const std::vector<int64_t> cu = cu_from_lengths(lens);
    const int64_t N = lens.size();
    ServingCall s;
    s.c = small_case(1, cu.back(), 11);
    if (idx == LINATTN_INT64) {
      s.c.Hq = 8, s.c.Hk = 2, s.c.Hkv = 4;
      s.c.decay = DecayKind::kPerKeyDim;
      s.c.beta = BetaKind::kShared;
    }
    s.in = make_inputs(s.c);
    s.past = random_pool(s.c, N, false, true, 5);
    s.present = random_pool(s.c, N, false, false, 6);
    s.present.poison();
    s.out = poisoned_output(s.c);
    s.cu = index_tensor(idx, cu);
    s.his = index_tensor(idx, {1, 1, 0, 1, 1, 0});
    s.flag = flag_tensor(99);
    check(s, tol_for(s.c), std::string("varlen rows ") + dtype_short_name(idx));
  }
}

// A mixed batch (prefill and decode sequences, a zero-length one, a PAD) over a strided pool,
// read in place, through an aliased past, through read_state_indices, or from a separate past
// pool of another dtype; float32 and bfloat16 activations and states.
TEST_F(CudaServing, PoolMixedBatch) {
  const std::vector<int64_t> lens{3, 1, 1, 70, 0, 1, 1, 0};
  // No slot written by one sequence is read by another (docs/SERVING.md "Sharing slots").
  const std::vector<int64_t> slot{4, -1, 7, 0, 2, 8, 3, 6};
  const std::vector<int64_t> rd{5, 0, 1, -1, 2, 5, 1, 1};
  const std::vector<int64_t> init{1, 1, 1, 0, 1, 1, 1, 1};
  const std::vector<int64_t> cu = cu_from_lengths(lens);
  struct Types { linattn_dtype act, state; };
  for (Types ty : {Types{LINATTN_FLOAT32, LINATTN_FLOAT32}, Types{LINATTN_BFLOAT16, LINATTN_BFLOAT16},
                   Types{LINATTN_BFLOAT16, LINATTN_FLOAT32}}) {
    for (int mode = 0; mode < 4; ++mode) {
      ServingCall s;
      s.c = small_case(1, cu.back(), 21 + mode);
      s.c.act_dtype = ty.act;
      s.c.state_dtype = ty.state;
      s.in = make_inputs(s.c);
      s.present = random_pool(s.c, 9, false, true, 7 + mode);
      s.out = poisoned_output(s.c);
      s.cu = index_tensor(LINATTN_INT32, cu);
      s.si = index_tensor(LINATTN_INT64, slot);
      s.his = index_tensor(LINATTN_INT32, init);
      s.flag = flag_tensor(-5);
      if (mode == 1) s.past_is_present = true;
      if (mode == 2) s.rsi = index_tensor(LINATTN_INT32, rd);
      if (mode == 3) {  // a separate read pool of 7 slots in the other state dtype
        LinearAttentionCase pc = s.c;
        pc.state_dtype = ty.state == LINATTN_FLOAT32 ? LINATTN_BFLOAT16 : LINATTN_FLOAT32;
        s.past = random_pool(pc, 7, false, true, 17);
        s.rsi = index_tensor(LINATTN_INT32, rd);
      }
      check(s, tol_for(s.c),
            "pool mode " + std::to_string(mode) + " " + dtype_short_name(ty.act) + "/" +
                dtype_short_name(ty.state));
    }
  }
}

// Speculative decoding: T_s draft tokens per sequence, the state after each stored to its own
// slot; two steps, the second resuming from the slot num_accepted_tokens names (1..T_s).
TEST_F(CudaServing, SpeculativeEveryAcceptanceCount) {
  const int64_t Ts = 4, N = 3, slots = N * Ts + 1;
  for (bool varlen : {false, true}) {
    for (int64_t acc = 1; acc <= Ts; ++acc) {
      const bool vm = acc % 2 == 0;
      const std::vector<int64_t> lens = varlen ? std::vector<int64_t>{4, 2, 3}
                                               : std::vector<int64_t>{Ts, Ts, Ts};
      const std::vector<int64_t> cu = cu_from_lengths(lens);
      LinearAttentionCase c = small_case(varlen ? 1 : N, varlen ? cu.back() : Ts, 40 + acc);
      if (acc == 3) c.state_dtype = LINATTN_BFLOAT16;
      HostTensor pool = random_pool(c, slots, vm, true, 9);
      for (int step = 0; step < 2; ++step) {
        c.seed += 100;
        ServingCall s;
        s.c = c;
        s.vm = vm;
        s.in = make_inputs(c);
        s.present = pool;
        s.out = poisoned_output(c);
        std::vector<int64_t> slot;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t t = 0; t < Ts; ++t) slot.push_back(n * Ts + t);
        if (step == 0) slot[1] = -1;
        if (step == 1) slot[2 * Ts] = -1;  // sequence 2 is PAD
        std::vector<int64_t> accepted(N, 1);
        if (step == 1)
          for (int64_t n = 0; n < N; ++n) accepted[n] = std::min(acc, lens[n]);
        s.si = index_tensor(LINATTN_INT32, slot, {N, Ts});
        if (step == 1) s.nat = index_tensor(LINATTN_INT64, accepted);
        if (varlen) s.cu = index_tensor(LINATTN_INT64, cu);
        s.flag = flag_tensor(3);
        const std::string what = "spec acc " + std::to_string(acc) + " step " +
                                 std::to_string(step) + (varlen ? " varlen" : "");
        const Outcome want = run_reference(s);
        ASSERT_TRUE(want.status.ok()) << what << ": " << want.status.to_string();
        expect_same(s, want, run_cuda(s, cuda_context()), tol_for(c), what);
        pool = want.present;  // the next step starts from the oracle's pool
      }
    }
  }
}

// Prefix-cache checkpoints every 64 tokens, key-major and value-major, float32 and bf16 state.
TEST_F(CudaServing, Checkpoints) {
  for (bool vm : {false, true}) {
    for (linattn_dtype st : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
      const std::vector<int64_t> lens{200, 64, 10, 0};
      const std::vector<int64_t> cu = cu_from_lengths(lens);
      ServingCall s;
      s.c = small_case(1, cu.back(), 51);
      s.c.state_dtype = st;
      s.vm = vm;
      s.in = make_inputs(s.c);
      s.present = random_pool(s.c, 14, vm, true, 10);
      s.out = poisoned_output(s.c);
      s.cu = index_tensor(LINATTN_INT32, cu);
      s.si = index_tensor(LINATTN_INT32, {0, 1, 2, 12});
      s.ck = index_tensor(LINATTN_INT32, {3, -1, 5, 6, 7, 8, -1, -1, 9, 10, 11, -1, 13, -1, -1, -1},
                          {4, 4});
      s.ckpt_interval = 64;
      s.flag = flag_tensor(1);
      check(s, tol_for(s.c), std::string("checkpoints vm ") + (vm ? "1 " : "0 ") + dtype_short_name(st));
    }
  }
}

// Dense batch rows with value-major past/present states (no pool, no varlen).
TEST_F(CudaServing, ValueMajorRows) {
  ServingCall s;
  s.c = small_case(2, 37, 61);
  s.vm = true;
  s.in = make_inputs(s.c);
  s.past = random_pool(s.c, 2, true, true, 11);
  s.present = random_pool(s.c, 2, true, false, 12);
  s.present.poison();
  s.out = poisoned_output(s.c);
  check(s, tol_for(s.c), "value-major rows");
}

// In-call q/k L2 normalisation and gating from raw projections: dense rows in place and a
// pooled varlen batch; gated_delta and gated (no delta sum to carry |k|^2); f32 and bf16.
TEST_F(CudaServing, FusedL2NormAndGating) {
  for (linattn_dtype act : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
    for (linattn_update_rule rule : {LINATTN_RULE_GATED_DELTA, LINATTN_RULE_GATED}) {
      for (bool pooled : {false, true}) {
        const std::vector<int64_t> lens{20, 1, 45};
        const std::vector<int64_t> cu = cu_from_lengths(lens);
        ServingCall s;
        s.c = pooled ? small_case(1, cu.back(), 71, rule) : small_case(2, 33, 72, rule);
        s.c.act_dtype = act;
        if (rule == LINATTN_RULE_GATED) s.c.beta = BetaKind::kNone;
        s.in = make_inputs(s.c);
        make_fused(s, 700 + pooled);
        s.present = random_pool(s.c, pooled ? 5 : 2, false, false, 13);
        s.out = poisoned_output(s.c);
        if (pooled) {
          s.cu = index_tensor(LINATTN_INT32, cu);
          s.si = index_tensor(LINATTN_INT32, {3, 0, 4});
        } else {
          s.past_is_present = true;  // dense rows, in place
        }
        s.flag = flag_tensor(8);
        check(s, tol_for(s.c, true),
              std::string("fused ") + dtype_short_name(act) + (rule == LINATTN_RULE_GATED ? " gated" : " gdn") +
                  (pooled ? " pooled" : " rows"));
      }
    }
  }
}

// The reference decode shape through an in-place pool of 2B slots with shuffled slots, one PAD
// and one fresh sequence: B = 64 runs the wide decode kernel (here with a padded slot stride),
// B = 16 the wide decode kernel with a bf16 state, B = 4 the decode kernel; then the same with
// fused L2 norm and gating, a speculative single-token step, and a separate read pool.
TEST_F(CudaServing, ReferenceShapeDecodeThroughPool) {
  for (int64_t B : {64, 16, 4}) {
    for (linattn_dtype st : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
      for (int variant = 0; variant < 4; ++variant) {
        // The B = 4 runs cover the rest (host-side oracle work at B = 64 is what takes time).
        if (B == 64 && (variant >= 2 || st != LINATTN_FLOAT32)) continue;
        // B = 16: the wide decode kernel with a 16-bit state (64-column slabs).
        if (B == 16 && st != LINATTN_BFLOAT16) continue;
        ServingCall s;
        s.c = reference_shape(B, 900 + B + variant);
        s.c.state_dtype = st;
        s.in = make_inputs(s.c);
        const int64_t slots = B == 64 ? B + 8 : 2 * B;
        s.present = random_pool(s.c, slots, false, false, 21 + variant, variant == 0 ? 1 : 0);
        s.out = poisoned_output(s.c, false);
        std::vector<int64_t> perm(slots);
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), std::mt19937_64(B + variant));
        std::vector<int64_t> slot(perm.begin(), perm.begin() + B);
        slot[1] = -1;
        std::vector<int64_t> init(B, 1);
        init[2] = 0;
        s.his = index_tensor(LINATTN_INT32, init);
        s.flag = flag_tensor(4);
        std::string what = "reference shape B=" + std::to_string(B) + " " + dtype_short_name(st);
        if (variant == 2) {  // speculative, one token: read slot (n, acc-1), write slot (n, 0)
          std::vector<int64_t> sp(2 * B), acc(B);
          for (int64_t n = 0; n < B; ++n) {
            sp[2 * n] = slot[n];
            // A slot no sequence writes (docs/SERVING.md "Sharing slots").
            sp[2 * n + 1] = slot[n] < 0 ? -1 : perm[B + n];
            acc[n] = 1 + (n % 2);
          }
          s.si = index_tensor(LINATTN_INT32, sp, {B, 2});
          s.nat = index_tensor(LINATTN_INT32, acc);
          what += " spec";
        } else {
          s.si = index_tensor(LINATTN_INT64, slot);
        }
        if (variant == 1) {
          make_fused(s, 31 + B);
          what += " fused";
        }
        if (variant == 3) {  // a separate past pool, read through read_state_indices
          s.past = random_pool(s.c, B + 3, false, false, 77);
          std::vector<int64_t> rd(B);
          for (int64_t n = 0; n < B; ++n) rd[n] = (n * 7) % (B + 3);
          rd[3] = -1;
          s.rsi = index_tensor(LINATTN_INT32, rd);
          what += " past pool";
        }
        if (variant == 0) what += " padded slot stride";
        check(s, tol_for(s.c, variant == 1), what);
      }
    }
  }
}

// Index errors: an out-of-range slot in one sequence skips that sequence whole (its output
// rows and slots untouched), the others run, error_flag = 1 + n; a good call then clears it.
TEST_F(CudaServing, IndexErrorSkipsTheSequence) {
  // B = 4: the decode kernel; B = 16: the wide decode kernel (pool of 2B slots).
  struct Setup { bool reference_shape; int64_t bad; int64_t B; };
  for (Setup su : {Setup{false, 2, 4}, Setup{true, 1, 4}, Setup{true, 5, 16}}) {
    ServingCall s;
    std::vector<int64_t> slot, lens;
    const int64_t pool_slots = su.B == 4 ? 8 : 2 * su.B;
    if (su.reference_shape) {  // decode kernel paths: unpacked single-token rows
      s.c = reference_shape(su.B, 1234);
      slot = {3, 5, 0, 6};
      for (int64_t n = 4; n < su.B; ++n) slot.push_back(n + 12);  // distinct, below 2B
    } else {  // general kernel path: packed varlen
      lens = {3, 1, 5, 2};
      s.c = small_case(1, 11, 1235);
      slot = {3, 5, 0, 6};
      s.cu = index_tensor(LINATTN_INT32, cu_from_lengths(lens));
    }
    s.in = make_inputs(s.c);
    s.present = random_pool(s.c, pool_slots, false, !su.reference_shape, 5);
    s.out = poisoned_output(s.c, !su.reference_shape);
    s.flag = flag_tensor(0);
    // The oracle runs the same call with the bad sequence as PAD; its output rows are then
    // expected untouched (poison) rather than zero.
    ServingCall good = s;
    good.si = index_tensor(LINATTN_INT32, [&] { auto v = slot; v[su.bad] = -1; return v; }());
    Outcome want = run_reference(good);
    ASSERT_TRUE(want.status.ok()) << want.status.to_string();
    {
      const auto& st = want.out.strides();
      const int64_t b = su.reference_shape ? su.bad : 0;
      const int64_t t0 = su.reference_shape ? 0 : cu_from_lengths(lens)[su.bad];
      const int64_t len = su.reference_shape ? 1 : lens[su.bad];
      for (int64_t t = t0; t < t0 + len; ++t)
        for (int64_t x = 0; x < want.out.shape()[2]; ++x)
          want.out.set(b * st[0] + t * st[1] + x, std::nan(""));
    }
    auto bad = slot;
    bad[su.bad] = pool_slots;  // one past the last slot
    s.si = index_tensor(LINATTN_INT32, bad);
    DeviceCall d(s);
    Outcome got;
    got.status = linear_attention(cuda_context(), d.args);
    d.pl.synchronize();
    d.fetch(s, got);
    const std::string what = !su.reference_shape ? "bad slot, general kernel"
                             : su.B == 4            ? "bad slot, decode kernel"
                                                    : "bad slot, wide decode kernel";
    expect_same(s, want, got, tol_for(s.c), what);
    EXPECT_EQ(static_cast<const int32_t*>(got.flag.data())[0], 1 + su.bad) << what;
    // A good call on the same device tensors: flag back to 0.
    cudaMemcpy(const_cast<void*>(d.args.serving.state_indices.data), good.si.data(),
               good.si.storage_bytes(), cudaMemcpyHostToDevice);
    ASSERT_TRUE(linear_attention(cuda_context(), d.args).ok()) << linattn_last_error();
    d.pl.synchronize();
    d.fetch(s, got);
    EXPECT_EQ(static_cast<const int32_t*>(got.flag.data())[0], 0) << what << ": after a good call";
  }
}

// A serving decode (reference shape, in-place pool, fused gating) captured in a CUDA graph and
// replayed twice, the pool reset and the query refreshed in between.
TEST_F(CudaServing, GraphCaptureAndReplay) {
  GraphStream g;
  ASSERT_TRUE(g.ok());

  ServingCall s;
  s.c = reference_shape(3, 4321);
  s.in = make_inputs(s.c);
  make_fused(s, 99);
  s.present = random_pool(s.c, 6, false, false, 3);
  s.out = poisoned_output(s.c, false);
  s.si = index_tensor(LINATTN_INT32, {4, -1, 1});
  s.flag = flag_tensor(7);
  DeviceCall d(s);
  ASSERT_TRUE(g.capture([&] { return linear_attention(g.ctx(), d.args); }));
  for (int replay = 0; replay < 2; ++replay) {
    if (replay == 1) {
      LinearAttentionCase c2 = s.c;
      c2.seed += 1000;
      LinearAttentionInputs fresh = make_inputs(c2);
      s.in.query = fresh.query;
      LINATTN_CUDA_OK(cudaMemcpy(d.dev.at(&s.in.query), s.in.query.data(), s.in.query.storage_bytes(),
                                 cudaMemcpyHostToDevice));
    }
    LINATTN_CUDA_OK(cudaMemcpy(d.dev.at(&s.present), s.present.data(), s.present.storage_bytes(),
                               cudaMemcpyHostToDevice));
    LINATTN_CUDA_OK(cudaMemcpy(d.dev.at(&s.out), s.out.data(), s.out.storage_bytes(), cudaMemcpyHostToDevice));
    LINATTN_CUDA_OK(cudaMemcpy(d.dev.at(&s.flag), s.flag.data(), 4, cudaMemcpyHostToDevice));
    ASSERT_TRUE(g.replay());
    Outcome got;
    d.fetch(s, got);
    const Outcome want = run_reference(s);
    ASSERT_TRUE(want.status.ok()) << want.status.to_string();
    expect_same(s, want, got, tol_for(s.c, true), "graph replay " + std::to_string(replay));
    EXPECT_EQ(static_cast<const int32_t*>(got.flag.data())[0], 0);
  }
}

}  // namespace
}  // namespace linattn::test::serving
