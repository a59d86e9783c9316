// resolve_sequence() (core/serving_params.hpp), which device kernels apply to their own sequence,
// against the host's serving check (core/serving_check.cpp), which reads every index before a
// call runs: over random serving configurations (packed or not, pool or not, speculative or not,
// read indices, has_initial_state, num_accepted_tokens, checkpoints), valid ones and ones with
// exactly one bad value of each kind, the host accepts the call exactly when resolve_sequence
// accepts every sequence, and then every sequence resolves to the host plan's ServingSequence.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "core/serving.hpp"
#include "core/serving_params.hpp"
#include "serving_support.hpp"

namespace linattn::test::serving {
namespace {

using detail::ResolvedSequence;
using detail::ServingIndices;
using detail::ServingSequence;

// A serving configuration by value; tensors are built from it for one check.
struct Config {
  bool conv = false;  // CausalConvWithState instead of LinearAttention (no checkpoints)
  bool packed = false, pool = false, spec = false, has_past = false;
  std::vector<int64_t> lens;  // packed lengths (cu_seqlens from them unless `cu` is set)
  std::vector<int64_t> cu;
  int64_t B = 0, L = 0;       // not packed: B rows of L tokens
  int64_t slots = 0, read_rows = 0, Ts = 0;
  std::vector<int64_t> si, rsi, hi, na, ckpt;
  int64_t M = 0;              // checkpoints per sequence
  linattn_dtype idx = LINATTN_INT32;

  int64_t N() const { return packed ? static_cast<int64_t>(lens.size()) : B; }
  int64_t T() const {
    if (!packed) return L;
    int64_t t = 0;
    for (int64_t l : lens) t += l;
    return t;
  }
};

enum Bad {
  kValid, kCuStart, kCuDecreasing, kCuPastT, kCuEnd, kSlotLow, kSlotHigh, kReadHigh, kReadLow,
  kAccepted, kSpecTooLong, kCheckpoint, kNumBad
};
const char* bad_name(int b) {
  static const char* names[] = {"valid", "cu_seqlens[0] != 0", "cu_seqlens decreasing", "cu_seqlens past T",
                                "cu_seqlens[N] != T", "slot < -1", "slot >= slots", "read slot >= read pool",
                                "read slot < -1", "num_accepted out of 1..T_s", "spec sequence > T_s",
                                "checkpoint slot out of range"};
  return names[b];
}

// A valid configuration.
Config random_config(std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  Config c;
  c.packed = pick(0, 1);
  c.pool = pick(0, 3) != 0;
  c.spec = c.pool && pick(0, 2) == 0;
  c.has_past = pick(0, 1);
  c.idx = pick(0, 1) ? LINATTN_INT64 : LINATTN_INT32;
  c.Ts = c.spec ? pick(1, 4) : 0;
  const int64_t N = pick(1, 5);
  const int64_t maxlen = c.spec ? c.Ts : 6;
  if (c.packed) {
    for (int64_t n = 0; n < N; ++n) c.lens.push_back(pick(0, maxlen));
  } else {
    c.B = N;
    c.L = pick(c.spec ? 1 : 0, maxlen);
  }
  c.slots = pick(1, 8);
  c.read_rows = c.pool ? (c.has_past ? pick(1, 8) : c.slots) : N;
  // Slot values valid for both pools where they may be read.
  const int64_t both = std::min(c.slots, c.read_rows);
  if (c.pool && c.spec) {
    for (int64_t i = 0; i < N * c.Ts; ++i) c.si.push_back(pick(-1, c.slots - 1));
    for (int64_t n = 0; n < N; ++n) {
      const int64_t acc = pick(1, c.Ts);
      c.si[n * c.Ts + acc - 1] = pick(-1, both - 1);  // the resumed slot exists in the read pool
      if (pick(0, 1)) c.na.push_back(acc);
    }
    if (c.na.size() != static_cast<size_t>(N)) {  // absent: every sequence resumes slot [n, 0]
      c.na.clear();
      for (int64_t n = 0; n < N; ++n)
        if (c.si[n * c.Ts] >= both) c.si[n * c.Ts] = pick(-1, both - 1);
    }
  } else if (c.pool) {
    const bool read_idx = pick(0, 1);
    for (int64_t n = 0; n < N; ++n) c.si.push_back(pick(-1, read_idx ? c.slots - 1 : both - 1));
    if (read_idx)
      for (int64_t n = 0; n < N; ++n) c.rsi.push_back(pick(-1, c.read_rows - 1));
    if (!c.conv && pick(0, 2) == 0) {
      c.M = pick(1, 3);
      for (int64_t i = 0; i < N * c.M; ++i) c.ckpt.push_back(pick(-1, c.slots - 1));
    }
  }
  if (pick(0, 1))
    for (int64_t n = 0; n < N; ++n) c.hi.push_back(pick(0, 2));
  c.conv = c.M == 0 && pick(0, 1);
  return c;
}

// Applies one bad value of kind `bad`; false when the configuration has no such field.
bool make_bad(Config& c, int bad, std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const int64_t N = c.N();
  if (bad >= kCuStart && bad <= kCuEnd) {
    if (!c.packed) return false;
    std::vector<int64_t> cu = cu_from_lengths(c.lens);
    const int64_t T = cu.back();
    switch (bad) {
      case kCuStart: cu[0] = pick(1, 3); break;
      case kCuDecreasing: {
        if (N < 2) return false;
        const int64_t n = pick(1, N - 1);
        cu[n] = cu[n - 1] - pick(1, 2);
        break;
      }
      case kCuPastT: {
        if (N < 2) return false;
        cu[pick(1, N - 1)] = T + pick(1, 3);
        break;
      }
      default: cu[N] = pick(0, 1) && T > cu[N - 1] ? T - 1 : T + pick(1, 2); break;
    }
    c.cu = cu;
    return true;
  }
  if (bad == kSpecTooLong) {
    if (!c.spec) return false;
    if (c.packed) c.lens[pick(0, N - 1)] = c.Ts + pick(1, 2);
    else c.L = c.Ts + 1;
    return true;
  }
  if (!c.pool) return false;
  const int64_t n = pick(0, N - 1);
  switch (bad) {
    case kSlotLow:
      c.si[c.spec ? n * c.Ts + pick(0, c.Ts - 1) : n] = -2 - pick(0, 5);
      return true;
    case kSlotHigh:
      c.si[c.spec ? n * c.Ts + pick(0, c.Ts - 1) : n] = c.slots + pick(0, 3);
      return true;
    case kReadHigh:
      if (!c.rsi.empty()) {
        c.rsi[n] = c.read_rows + pick(0, 3);
        return true;
      }
      if (c.read_rows >= c.slots) return false;  // a slot past the read pool must exist in the written one
      if (c.spec) {
        const int64_t acc = c.na.empty() ? 1 : c.na[n];
        c.si[n * c.Ts + acc - 1] = pick(c.read_rows, c.slots - 1);
      } else {
        c.si[n] = pick(c.read_rows, c.slots - 1);
      }
      return true;
    case kReadLow:
      if (c.rsi.empty()) return false;
      c.rsi[n] = -2 - pick(0, 3);
      return true;
    case kAccepted:
      if (c.na.empty()) return false;
      c.na[n] = pick(0, 1) ? 0 : c.Ts + pick(1, 2);
      return true;
    case kCheckpoint:
      if (c.M == 0) return false;
      c.ckpt[n * c.M + pick(0, c.M - 1)] = pick(0, 1) ? -2 : c.slots + pick(0, 2);
      return true;
    default: return false;
  }
}

// Every present view of a call labelled device memory.
void relabel(linattn_tensor& t) {
  if (t.rank != 0) t.memory = LINATTN_MEMORY_CUDA;
}
void relabel(linattn_serving_args& s) {
  for (linattn_tensor* t : {&s.cu_seqlens, &s.state_indices, &s.read_state_indices, &s.has_initial_state,
                            &s.num_accepted_tokens, &s.checkpoint_indices, &s.error_flag, &s.A_log, &s.dt_bias})
    relabel(*t);
}
CausalConvArgs on_device(CausalConvArgs a) {
  for (linattn_tensor* t : {&a.input, &a.weight, &a.bias, &a.past_state, &a.output, &a.present_state}) relabel(*t);
  relabel(a.serving);
  return a;
}
LinearAttentionArgs on_device(LinearAttentionArgs a) {
  for (linattn_tensor* t : {&a.query, &a.key, &a.value, &a.past_state, &a.decay, &a.beta, &a.output,
                            &a.present_state})
    relabel(*t);
  relabel(a.serving);
  return a;
}

struct Checked {
  detail::Status status;    // the host check (reference backend), which reads the contents
  detail::ServingPlan plan;
  detail::Status device_status;  // the same views checked under the CUDA backend's rules
  ServingIndices ix;        // ... which gives what the CUDA kernels get (contents unread)
  // Index tensors the views of ix point into (kept alive with them).
  HostTensor cu, si, rsi, hi, na, ckpt;
};

// Builds the call's tensors and runs the serving check twice: on the reference backend (host
// views: every index read, the plan) and on the CUDA backend's rules with the same host
// buffers labelled device memory (only shapes, dtypes and aliasing are checked there, nothing
// is dereferenced), which yields the views the CUDA kernels resolve from.
void host_check(const Config& c, Checked* out) {
  const int64_t N = c.N(), T = c.T();
  const int64_t Bt = c.packed ? 1 : N;
  const int64_t rows = c.pool ? c.slots : N;
  if (!c.cu.empty()) out->cu = index_tensor(c.idx, c.cu);
  else if (c.packed) out->cu = index_tensor(c.idx, cu_from_lengths(c.lens));
  if (c.pool) out->si = c.spec ? index_tensor(c.idx, c.si, {N, c.Ts}) : index_tensor(c.idx, c.si);
  if (!c.rsi.empty()) out->rsi = index_tensor(c.idx, c.rsi);
  if (!c.hi.empty()) out->hi = index_tensor(c.idx, c.hi);
  if (!c.na.empty()) out->na = index_tensor(c.idx, c.na);
  if (c.M > 0) out->ckpt = index_tensor(c.idx, c.ckpt, {N, c.M});
  linattn_serving_args s = default_serving_args();
  s.cu_seqlens = out->cu.view();
  s.state_indices = out->si.view();
  s.read_state_indices = out->rsi.view();
  s.has_initial_state = out->hi.view();
  s.num_accepted_tokens = out->na.view();
  if (c.M > 0) {
    s.checkpoint_interval = 64;
    s.checkpoint_indices = out->ckpt.view();
  }
  if (c.conv) {
    HostTensor x(LINATTN_FLOAT32, {Bt, 2, T}), w(LINATTN_FLOAT32, {2, 1, 3}), y(LINATTN_FLOAT32, {Bt, 2, T});
    HostTensor pres(LINATTN_FLOAT32, {rows, 2, 2}), past(LINATTN_FLOAT32, {c.read_rows, 2, 2});
    CausalConvArgs a = default_causal_conv_args();
    a.input = x.view();
    a.weight = w.view();
    a.output = y.view();
    a.present_state = pres.view();
    if (c.has_past) a.past_state = past.view();
    a.serving = s;
    detail::ServingCausalConv r, d;
    out->status = detail::check_causal_conv_serving(a, LINATTN_BACKEND_REFERENCE, &r);
    out->plan = r.plan;
    out->device_status = detail::check_causal_conv_serving(on_device(a), LINATTN_BACKEND_CUDA, &d);
    out->ix = d.ix;
    return;
  }
  HostTensor q(LINATTN_FLOAT32, {Bt, T, 2}), y(LINATTN_FLOAT32, {Bt, T, 2});
  HostTensor pres(LINATTN_FLOAT32, {rows, 1, 2, 2}), past(LINATTN_FLOAT32, {c.read_rows, 1, 2, 2});
  LinearAttentionArgs a = default_linear_attention_args();
  a.q_num_heads = a.kv_num_heads = 1;
  a.update_rule = LINATTN_RULE_LINEAR;
  a.query = a.key = a.value = q.view();
  a.output = y.view();
  a.present_state = pres.view();
  if (c.has_past) a.past_state = past.view();
  a.serving = s;
  detail::ServingLinearAttention r, d;
  out->status = detail::check_linear_attention_serving(a, LINATTN_BACKEND_REFERENCE, &r);
  out->plan = r.plan;
  out->device_status = detail::check_linear_attention_serving(on_device(a), LINATTN_BACKEND_CUDA, &d);
  out->ix = d.ix;
}

TEST(ServingResolve, MatchesTheHostPlan) {
  std::mt19937_64 rng(20261122);
  int accepted[kNumBad] = {}, rejected[kNumBad] = {};
  for (int iter = 0; iter < 1500; ++iter) {
    const Config base = random_config(rng);
    for (int bad = kValid; bad < kNumBad; ++bad) {
      Config c = base;
      if (bad != kValid && !make_bad(c, bad, rng)) continue;
      SCOPED_TRACE(std::string(bad_name(bad)) + ", iteration " + std::to_string(iter));
      Checked h;
      host_check(c, &h);
      ASSERT_TRUE(h.device_status.ok()) << h.device_status.message();
      const ServingIndices& ix = h.ix;
      ASSERT_EQ(ix.N, c.N());
      if (!h.status.ok()) {
        ASSERT_EQ(h.status.code(), LINATTN_ERROR_INVALID_ARGUMENT) << h.status.message();
        ASSERT_NE(bad, kValid) << h.status.message();
        bool all = true;
        for (int64_t n = 0; n < ix.N; ++n) {
          ResolvedSequence r;
          all = detail::resolve_sequence(ix, n, &r) && all;
        }
        EXPECT_FALSE(all) << "the host rejects the call but every sequence resolves: " << h.status.message();
        ++rejected[bad];
        continue;
      }
      ++accepted[bad];
      ASSERT_EQ(static_cast<int64_t>(h.plan.seqs.size()), ix.N);
      for (int64_t n = 0; n < ix.N; ++n) {
        ResolvedSequence r;
        ASSERT_TRUE(detail::resolve_sequence(ix, n, &r)) << "sequence " << n << " of an accepted call";
        const ServingSequence& q = h.plan.seqs[n];
        EXPECT_EQ(r.b, q.b) << "sequence " << n;
        EXPECT_EQ(r.t0, q.t0) << "sequence " << n;
        EXPECT_EQ(r.len, q.len) << "sequence " << n;
        EXPECT_EQ(r.read, q.read) << "sequence " << n;
        EXPECT_EQ(r.write, q.write) << "sequence " << n;
        EXPECT_EQ(r.pad, q.pad) << "sequence " << n;
      }
    }
  }
  // Every kind of bad value was generated and rejected (a bad value in a PAD sequence, e.g. its
  // num_accepted_tokens, is legitimately never read: those calls count as accepted).
  for (int bad = kValid; bad < kNumBad; ++bad) {
    if (bad == kValid) {
      EXPECT_GT(accepted[bad], 1000) << bad_name(bad);
      EXPECT_EQ(rejected[bad], 0);
    } else {
      EXPECT_GT(rejected[bad], 20) << bad_name(bad);
    }
  }
}

}  // namespace
}  // namespace linattn::test::serving
