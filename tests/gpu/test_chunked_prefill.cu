// Chunked (WY) prefill against the float64 oracle. Each case draws fresh realistic inputs
// (q, k L2-normalised, g = logsigmoid(.) <= 0, beta in (0, 1)), rounds them to the activation
// type, runs chunked_prefill() on the device with NaN-poisoned outputs, and runs the reference
// backend on float64 copies of the same rounded values.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/backend.hpp"
#include "core/dtype.hpp"
#include "cuda/chunked_options.cuh"
#include "cuda/chunked_prefill.hpp"
#include "cuda/linear_attention.hpp"

namespace linattn::detail {
namespace {

struct Cfg {
  linattn_update_rule rule = LINATTN_RULE_GATED_DELTA;
  int64_t B = 1, T = 64;
  int Hq = 2, Hk = 2, Hkv = 2, dk = 128, dv = 128;
  linattn_dtype act = LINATTN_BFLOAT16;
  bool has_past = true;
  linattn_dtype past = LINATTN_FLOAT32, present = LINATTN_FLOAT32;
  bool in_place = false;
  bool beta_shared = false;
  int pad = 0;  // extra elements per token row of q/k/v/out (odd: unaligned rows)
  bool split = true;
  int64_t window = 0;  // ChunkedOptions::max_window_chunks
  int segments = 0;    // ChunkedOptions::segments
  int prefix = -1;     // ChunkedOptions::prefix
  double share = 0;    // ChunkedOptions::prefix_share
  bool pw = true;      // ChunkedOptions::p_warpgroup
  bool pair = true;    // ChunkedOptions::pair_slabs
  int head = -1;       // ChunkedOptions::whole_head
  double tol = 3e-3;
};

std::string describe(const Cfg& c) {
  char buf[360];
  std::snprintf(buf, sizeof buf, "%s B=%lld T=%lld Hq=%d Hk=%d Hkv=%d dk=%d dv=%d act=%s past=%s present=%s%s%s pad=%d split=%d pw=%d pair=%d head=%d window=%lld seg=%d prefix=%d share=%.2f",
                linattn_update_rule_name(c.rule), (long long)c.B, (long long)c.T, c.Hq, c.Hk,
                c.Hkv, c.dk, c.dv, linattn_dtype_name(c.act),
                c.has_past ? linattn_dtype_name(c.past) : "none", linattn_dtype_name(c.present),
                c.in_place ? " in-place" : "", c.beta_shared ? " beta-shared" : "", c.pad,
                c.split ? 1 : 0, c.pw ? 1 : 0, c.pair ? 1 : 0, c.head, (long long)c.window, c.segments, c.prefix, c.share);
  return buf;
}

size_t dsize(linattn_dtype t) { return t == LINATTN_FLOAT32 ? 4 : (t == LINATTN_FLOAT64 ? 8 : 2); }

double round_to(linattn_dtype t, double x) {
  uint16_t bits;
  switch (t) {
    case LINATTN_BFLOAT16: bits = float_to_bf16_bits(static_cast<float>(x)); return bf16_bits_to_float(bits);
    case LINATTN_FLOAT16: bits = float_to_f16_bits(static_cast<float>(x)); return f16_bits_to_float(bits);
    case LINATTN_FLOAT32: return static_cast<float>(x);
    default: return x;
  }
}

// A tensor as float64 logical values plus its storage bytes in the device dtype and layout.
struct Tensor {
  std::vector<double> vals;     // packed logical values (already rounded)
  std::vector<uint8_t> bytes;   // storage in dtype with row stride `row`
  int64_t rows = 0, cols = 0, row = 0;
  linattn_dtype dtype = LINATTN_FLOAT32;
  void* dev = nullptr;

  void make(int64_t r, int64_t c, int64_t stride, linattn_dtype t) {
    rows = r; cols = c; row = stride; dtype = t;
    vals.assign(static_cast<size_t>(r * c), 0.0);
    bytes.assign(static_cast<size_t>(r * stride) * dsize(t), 0xff);  // NaN padding
  }
  void set(int64_t i, int64_t j, double x) {
    const double v = round_to(dtype, x);
    vals[i * cols + j] = v;
    store_from_float(bytes.data(), i * row + j, dtype, static_cast<float>(v));
  }
  double get_dev(int64_t i, int64_t j) const {
    return load_as_float(bytes.data(), i * row + j, dtype);
  }
  void upload() {
    ASSERT_EQ(cudaMalloc(&dev, bytes.size()), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dev, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  void download() {
    ASSERT_EQ(cudaMemcpy(bytes.data(), dev, bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
  }
  ~Tensor() { if (dev) cudaFree(dev); }
};

struct Errors {
  double out = 0, state = 0;
  int64_t nan = 0;
  std::vector<double> got_out, got_state;  // the device's results
};

double rel(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

Errors run(const Cfg& c, uint64_t seed) {
  Errors er;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  const int Hout = std::max(c.Hq, c.Hkv);
  const bool gated = c.rule == LINATTN_RULE_GATED || c.rule == LINATTN_RULE_GATED_DELTA;
  const bool delta = c.rule == LINATTN_RULE_DELTA || c.rule == LINATTN_RULE_GATED_DELTA;
  const int64_t BT = c.B * c.T;

  Tensor q, k, v, g, beta, out, past, present;
  q.make(BT, c.Hq * c.dk, c.Hq * c.dk + c.pad, c.act);
  k.make(BT, c.Hk * c.dk, c.Hk * c.dk + c.pad, c.act);
  v.make(BT, c.Hkv * c.dv, c.Hkv * c.dv + c.pad, c.act);
  auto fill_unit = [&](Tensor& t, int heads, int d) {
    std::vector<double> x(d);
    for (int64_t r = 0; r < BT; ++r)
      for (int hh = 0; hh < heads; ++hh) {
        double n2 = 0;
        for (int i = 0; i < d; ++i) { x[i] = nd(rng); n2 += x[i] * x[i]; }
        for (int i = 0; i < d; ++i) t.set(r, hh * d + i, x[i] / std::sqrt(n2));
      }
  };
  fill_unit(q, c.Hq, c.dk);
  fill_unit(k, c.Hk, c.dk);
  for (int64_t r = 0; r < BT; ++r)
    for (int64_t j = 0; j < v.cols; ++j) v.set(r, j, nd(rng));
  if (gated) {
    g.make(BT, c.Hkv, c.Hkv, c.act);
    for (int64_t r = 0; r < BT; ++r)
      for (int hh = 0; hh < c.Hkv; ++hh) {
        const double x = 1.5 * nd(rng) + 2.5;
        g.set(r, hh, -std::log1p(std::exp(-x)));  // logsigmoid(x)
      }
  }
  if (delta) {
    const int nb = c.beta_shared ? 1 : c.Hkv;
    beta.make(BT, nb, nb, c.act);
    for (int64_t r = 0; r < BT; ++r)
      for (int hh = 0; hh < nb; ++hh) beta.set(r, hh, 1.0 / (1.0 + std::exp(-nd(rng))));
  }
  const int64_t srows = c.B * c.Hkv * c.dk;
  if (c.has_past) {
    past.make(srows, c.dv, c.dv, c.past);
    for (int64_t r = 0; r < srows; ++r)
      for (int64_t j = 0; j < c.dv; ++j) past.set(r, j, 0.5 * nd(rng));
  }
  out.make(BT, Hout * c.dv, Hout * c.dv + c.pad, c.act);
  present.make(srows, c.dv, c.dv, c.in_place ? c.past : c.present);

  // Oracle on float64 copies.
  std::vector<double> ref_out(static_cast<size_t>(BT * Hout * c.dv)), ref_state(static_cast<size_t>(srows * c.dv));
  LinearAttentionParams p;
  p.B = c.B; p.T = c.T; p.Hq = c.Hq; p.Hk = c.Hk; p.Hkv = c.Hkv; p.Hout = Hout;
  p.dk = c.dk; p.dv = c.dv; p.rule = c.rule; p.gated = gated; p.delta = delta;
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c.dk)));
  p.beta_shared = c.beta_shared;
  {
    LinearAttentionParams r = p;
    r.act_dtype = LINATTN_FLOAT64; r.past_dtype = LINATTN_FLOAT64; r.present_dtype = LINATTN_FLOAT64;
    r.q = q.vals.data(); r.q_st = q.cols; r.q_sb = c.T * q.cols;
    r.k = k.vals.data(); r.k_st = k.cols; r.k_sb = c.T * k.cols;
    r.v = v.vals.data(); r.v_st = v.cols; r.v_sb = c.T * v.cols;
    if (gated) { r.decay = g.vals.data(); r.g_st = g.cols; r.g_sb = c.T * g.cols; }
    if (delta) { r.beta = beta.vals.data(); r.beta_st = beta.cols; r.beta_sb = c.T * beta.cols; }
    r.out = ref_out.data(); r.o_st = Hout * c.dv; r.o_sb = c.T * r.o_st;
    if (c.has_past) {
      r.past = past.vals.data(); r.past_sk = c.dv; r.past_sh = c.dk * c.dv; r.past_sb = c.Hkv * r.past_sh;
    }
    r.present = ref_state.data(); r.pres_sk = c.dv; r.pres_sh = c.dk * c.dv; r.pres_sb = c.Hkv * r.pres_sh;
    Exec e;
    Status st = reference::linear_attention(r, e);
    EXPECT_TRUE(st.ok()) << st.message();
  }

  // Device run.
  q.upload(); k.upload(); v.upload(); out.upload();
  if (gated) g.upload();
  if (delta) beta.upload();
  if (c.has_past) past.upload();
  if (!c.in_place) present.upload();
  p.act_dtype = c.act; p.past_dtype = c.past; p.present_dtype = c.in_place ? c.past : c.present;
  p.q = q.dev; p.q_st = q.row; p.q_sb = c.T * q.row;
  p.k = k.dev; p.k_st = k.row; p.k_sb = c.T * k.row;
  p.v = v.dev; p.v_st = v.row; p.v_sb = c.T * v.row;
  if (gated) { p.decay = g.dev; p.g_st = g.row; p.g_sb = c.T * g.row; }
  if (delta) { p.beta = beta.dev; p.beta_st = beta.row; p.beta_sb = c.T * beta.row; }
  p.out = out.dev; p.o_st = out.row; p.o_sb = c.T * out.row;
  if (c.has_past) {
    p.past = past.dev; p.past_sk = c.dv; p.past_sh = c.dk * c.dv; p.past_sb = c.Hkv * p.past_sh;
  }
  p.present = c.in_place ? past.dev : present.dev;
  p.pres_sk = c.dv; p.pres_sh = c.dk * c.dv; p.pres_sb = c.Hkv * p.pres_sh;
  p.in_place = c.in_place;
  EXPECT_TRUE(cuda::chunked_prefill_supports(p));
  cuda::ChunkedOptions o;
  o.split_state = c.split;
  o.max_window_chunks = c.window;
  o.segments = c.segments;
  o.prefix = c.prefix;
  o.prefix_share = c.share;
  o.p_warpgroup = c.pw;
  o.pair_slabs = c.pair;
  o.whole_head = c.head;
  Exec e;
  e.workspace_bytes = cuda::chunked_prefill_workspace_bytes_with(p, o);
  EXPECT_GT(e.workspace_bytes, 0u);
  EXPECT_EQ(cudaMalloc(&e.workspace, e.workspace_bytes), cudaSuccess);
  // Poisoned (NaN in every 16-bit and float32 field): the call may read only what it wrote.
  EXPECT_EQ(cudaMemset(e.workspace, 0xff, e.workspace_bytes), cudaSuccess);
  Status st = cuda::chunked_prefill_with(p, e, o);
  EXPECT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  cudaFree(e.workspace);
  out.download();
  Tensor& st_t = c.in_place ? past : present;
  st_t.download();

  std::vector<double> got_out(ref_out.size()), got_state(ref_state.size());
  for (int64_t r = 0; r < BT; ++r)
    for (int64_t j = 0; j < out.cols; ++j) {
      const double x = out.get_dev(r, j);
      if (std::isnan(x)) ++er.nan;
      got_out[r * out.cols + j] = x;
    }
  for (int64_t r = 0; r < srows; ++r)
    for (int64_t j = 0; j < c.dv; ++j) {
      const double x = st_t.get_dev(r, j);
      if (std::isnan(x)) ++er.nan;
      got_state[r * c.dv + j] = x;
    }
  er.out = rel(got_out, ref_out);
  er.state = rel(got_state, ref_state);
  er.got_out = std::move(got_out);
  er.got_state = std::move(got_state);
  return er;
}

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// One run's errors against the oracle: printed, no NaN, both within the case's bound.
void expect_within(const Cfg& c, const Errors& er) {
  std::printf("[chunked] %-110s out %.2e state %.2e\n", describe(c).c_str(), er.out, er.state);
  EXPECT_EQ(er.nan, 0) << describe(c);
  EXPECT_LE(er.out, c.tol) << describe(c);
  EXPECT_LE(er.state, c.tol) << describe(c);
}

void check(const Cfg& c) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  static uint64_t seed = std::random_device{}();
  expect_within(c, run(c, seed++));
}

TEST(ChunkedPrefill, Lengths) {
  for (int64_t T : {64, 65, 127, 129, 1000, 4096}) {
    Cfg c;
    c.T = T;
    check(c);
  }
}

TEST(ChunkedPrefill, ShortCalls) {
  // The dispatch sends calls from kChunkedPrefillMinTokens tokens on to the chunked path: one
  // partial chunk, at the threshold and just under a chunk, with and without decay.
  for (auto rule : {LINATTN_RULE_GATED_DELTA, LINATTN_RULE_DELTA}) {
    for (int64_t T : {cuda::kChunkedPrefillMinTokens, int64_t{13}, int64_t{63}}) {
      Cfg c;
      c.rule = rule;
      c.T = T;
      c.B = 3;
      check(c);
    }
  }
}

TEST(ChunkedPrefill, Windows) {
  // The state crosses windows through the float32 carry buffer; in place, it is read from past
  // by the first window and written to present by the last only.
  Cfg c;
  c.T = 1000;
  c.window = 3;
  check(c);
  c.in_place = true;
  c.B = 2;
  c.Hq = 4;
  c.Hk = 2;
  c.window = 5;
  check(c);
}

TEST(ChunkedPrefill, Long) {
  // 65536 tokens, 2 query/key heads, 8 value heads: several windows with the default bound,
  // the state rounded once per chunk as the library entry does for the gated rules; on a large
  // GPU the rule also cuts every window into segments.
  Cfg c;
  c.T = 65536;
  c.Hq = 2; c.Hk = 2; c.Hkv = 8;
  c.split = false;
  c.tol = 5e-3;
  check(c);
}

TEST(ChunkedPrefill, Segments) {
  // Segments scanned in parallel (local pass, combine, final pass), forced: lengths that are not
  // multiples of the segment, every rule, both key sizes, in place across windows, no past.
  for (int segs : {2, 3, 8}) {
    Cfg c;
    c.T = 1000;
    c.segments = segs;
    c.prefix = 0;  // two segments would take prefix segments by the rule
    check(c);
  }
  for (auto rule : {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED, LINATTN_RULE_DELTA}) {
    Cfg c;
    c.rule = rule;
    c.T = 1000;
    c.segments = 3;
    check(c);
  }
  Cfg c;
  c.T = 4096;
  c.segments = 8;
  c.rule = LINATTN_RULE_DELTA;  // no decay: the transition products stay near projections
  check(c);
  c.rule = LINATTN_RULE_GATED_DELTA;
  c.split = false;
  c.in_place = true;
  c.B = 2;
  c.window = 20;
  check(c);
  c = Cfg{};
  c.T = 777;
  c.segments = 8;
  c.has_past = false;
  c.dk = 64;
  c.act = LINATTN_FLOAT16;
  check(c);
}

TEST(ChunkedPrefill, PrefixSegments) {
  // Prefix segments (no local pass: each segment's chain walks the chunks before it, then its
  // own with outputs), forced: two by the rule, three, four, eight capped at four, lengths that
  // move the bounds (shares 0.2 and 0.9: walks shorter and longer than the prefetch stages, odd
  // and even), every rule with and without the split state, several query heads per state,
  // unaligned rows, in place across windows (the start comes from the carry), no past, d_k = 64
  // with float16, bfloat16 states, one chunk per segment.
  for (int segs : {2, 3, 4, 8}) {
    Cfg c;
    c.T = 1000;
    c.segments = segs;
    c.prefix = segs == 2 ? -1 : 1;
    check(c);
  }
  for (double share : {0.2, 0.9}) {
    Cfg c;
    c.T = 1500;
    c.segments = 3;
    c.prefix = 1;
    c.share = share;
    check(c);
  }
  for (auto rule : {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED, LINATTN_RULE_DELTA, LINATTN_RULE_GATED_DELTA}) {
    const bool decay = rule == LINATTN_RULE_GATED || rule == LINATTN_RULE_GATED_DELTA;
    for (bool split : {true, false}) {
      if (!split && !decay) continue;  // without decay the library always splits
      Cfg c;
      c.rule = rule;
      c.T = 777;
      c.segments = 2;
      c.split = split;
      c.Hq = 4; c.Hk = 2; c.Hkv = 2;
      check(c);
    }
  }
  Cfg c;
  c.T = 2000;
  c.segments = 3;
  c.prefix = 1;
  c.pad = 3;
  check(c);
  c = Cfg{};
  c.T = 3000;
  c.segments = 2;
  c.in_place = true;
  c.B = 2;
  c.window = 9;
  c.split = false;
  check(c);
  c = Cfg{};
  c.T = 777;
  c.segments = 4;
  c.prefix = 1;
  c.has_past = false;
  c.dk = 64;
  c.act = LINATTN_FLOAT16;
  check(c);
  c = Cfg{};
  c.T = 1000;
  c.segments = 2;
  c.past = LINATTN_BFLOAT16;
  c.present = LINATTN_BFLOAT16;
  check(c);
  c = Cfg{};
  c.T = 150;
  c.segments = 3;
  c.prefix = 1;
  c.B = 3;
  check(c);
}

// Cases both forms of the final pass meet, from `base` (its form, rule and T): unaligned rows,
// partial chunks of three sequences, in place across windows, bfloat16 states, prefix segments
// by the rule, and the local pass with the combine.
void check_final_pass_cases(const Cfg& base) {
  Cfg c = base;
  c.pad = 3;
  check(c);
  c = base;
  c.B = 3;
  c.T = 150;
  check(c);
  c = base;
  c.B = 2;
  c.T = 1000;
  c.in_place = true;
  c.window = 5;
  check(c);
  c = base;
  c.B = 2;
  c.T = 1000;
  c.past = LINATTN_BFLOAT16;
  c.present = LINATTN_BFLOAT16;
  check(c);
  c = base;
  c.T = 1500;
  c.segments = 2;  // prefix segments by the rule
  check(c);
  c.segments = 3;
  c.prefix = 0;
  check(c);
}

TEST(ChunkedPrefill, PWarpgroup) {
  // The final pass's fourth warpgroup for P o Q K^T (d_k = 128, one query head per state, no
  // state split: the library's choice for the gated rules) against the outputs warpgroup forming
  // it (pw = 0): both rules with decay and both activation types, one value slab, unaligned
  // rows, partial chunks of three sequences, in place across windows, bfloat16 states, prefix
  // segments and the local pass with the combine before it. The cases that do not qualify
  // (split, two query heads per state, d_k = 64) run the three-warpgroup form whatever pw says.
  // All on the slab form of the final pass (the whole-head form, below, has no pw choice).
  for (auto rule : {LINATTN_RULE_GATED, LINATTN_RULE_GATED_DELTA}) {
    for (auto act : {LINATTN_BFLOAT16, LINATTN_FLOAT16}) {
      for (bool pw : {true, false}) {
        Cfg c;
        c.head = 0;
        c.rule = rule;
        c.act = act;
        c.T = 1000;
        c.split = false;
        c.pw = pw;
        check(c);
      }
    }
  }
  Cfg c;
  c.head = 0;
  c.split = false;
  c.T = 500;
  c.dv = 64;
  check(c);
  c.dv = 128;
  check_final_pass_cases(c);
  c.T = 1500;
  c.segments = 3;
  c.prefix = 0;
  c.rule = LINATTN_RULE_GATED;
  check(c);
}

TEST(ChunkedPrefill, PairedSlabs) {
  // The two slab CTAs of a head as a cluster that forms P o Q K^T once per chunk (each CTA
  // every other chunk, copied to the other) against each CTA forming it: the same tiles, so
  // the same results to the bit, and both within the oracle's bound. Even and odd chunk counts
  // per CTA (one chunk: the second CTA forms none), partial chunks, both rules with decay and
  // both activation types, prefix segments, and the local pass with the combine before it.
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  struct Case {
    linattn_update_rule rule;
    linattn_dtype act;
    int64_t B, T;
    int segments, prefix;
  };
  const Case cases[] = {
      {LINATTN_RULE_GATED_DELTA, LINATTN_BFLOAT16, 1, 64, 0, -1},
      {LINATTN_RULE_GATED_DELTA, LINATTN_BFLOAT16, 2, 1000, 0, -1},
      {LINATTN_RULE_GATED_DELTA, LINATTN_FLOAT16, 3, 130, 0, -1},
      {LINATTN_RULE_GATED, LINATTN_BFLOAT16, 1, 700, 0, -1},
      {LINATTN_RULE_GATED, LINATTN_FLOAT16, 1, 1500, 2, -1},
      {LINATTN_RULE_GATED_DELTA, LINATTN_BFLOAT16, 1, 1500, 3, 1},
      {LINATTN_RULE_GATED_DELTA, LINATTN_BFLOAT16, 1, 1500, 3, 0},
  };
  for (const Case& k : cases) {
    Cfg c;
    c.rule = k.rule;
    c.act = k.act;
    c.B = k.B;
    c.T = k.T;
    c.segments = k.segments;
    c.prefix = k.prefix;
    c.split = false;
    c.head = 0;
    const uint64_t seed = std::random_device{}();
    c.pair = false;
    const Errors alone = run(c, seed);
    c.pair = true;
    const Errors paired = run(c, seed);
    expect_within(c, paired);
    ASSERT_EQ(alone.got_out.size(), paired.got_out.size());
    ASSERT_EQ(alone.got_state.size(), paired.got_state.size());
    int64_t out_diff = 0, state_diff = 0;
    for (size_t i = 0; i < alone.got_out.size(); ++i) out_diff += alone.got_out[i] != paired.got_out[i];
    for (size_t i = 0; i < alone.got_state.size(); ++i) state_diff += alone.got_state[i] != paired.got_state[i];
    EXPECT_EQ(out_diff, 0) << describe(c);
    EXPECT_EQ(state_diff, 0) << describe(c);
  }
}

TEST(ChunkedPrefill, Rules) {
  for (auto rule : {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED, LINATTN_RULE_DELTA, LINATTN_RULE_GATED_DELTA}) {
    for (auto act : {LINATTN_BFLOAT16, LINATTN_FLOAT16}) {
      Cfg c;
      c.rule = rule;
      c.act = act;
      c.T = 1000;
      check(c);
    }
  }
}

TEST(ChunkedPrefill, HeadMappings) {
  // The prep takes two value heads per CTA where they share a key head (an even number per key
  // head) and one otherwise: both kinds, the rules with the solve and one without (G only).
  for (auto rule : {LINATTN_RULE_GATED_DELTA, LINATTN_RULE_DELTA, LINATTN_RULE_GATED}) {
    Cfg c;
    c.rule = rule;
    c.T = 300;
    c.B = 2;
    c.Hq = 4; c.Hk = 2; c.Hkv = 2;  // GQA
    check(c);
    c.Hq = 2; c.Hk = 2; c.Hkv = 4;  // inverse GQA
    check(c);
    c.Hq = 4; c.Hk = 1; c.Hkv = 4;  // key sharing
    check(c);
    c.Hq = 3; c.Hk = 1; c.Hkv = 3;  // key sharing by an odd group
    check(c);
    c.Hq = 2; c.Hk = 2; c.Hkv = 6;  // inverse GQA by an odd group
    check(c);
    c.Hq = 1; c.Hk = 1; c.Hkv = 4;  // both, shared beta
    c.beta_shared = true;
    check(c);
  }
}

TEST(ChunkedPrefill, HeadSizes) {
  for (auto dims : {std::pair{64, 64}, std::pair{64, 128}, std::pair{128, 64}}) {
    Cfg c;
    c.T = 500;
    c.dk = dims.first;
    c.dv = dims.second;
    check(c);
    c.rule = LINATTN_RULE_GATED;
    c.act = LINATTN_FLOAT16;
    check(c);
  }
}

TEST(ChunkedPrefill, StatesAndLayouts) {
  Cfg c;
  c.T = 700;
  c.past = LINATTN_BFLOAT16; c.present = LINATTN_BFLOAT16;
  check(c);
  c.past = LINATTN_FLOAT16; c.present = LINATTN_FLOAT32;
  check(c);
  c.has_past = false;
  check(c);
  c.has_past = true; c.past = LINATTN_FLOAT32; c.in_place = true;
  check(c);
  c.in_place = false; c.pad = 8;  // strided, still 16-byte rows
  check(c);
  c.pad = 3;  // unaligned rows: scalar loads and stores
  c.act = LINATTN_FLOAT16;
  check(c);
}

TEST(ChunkedPrefill, StateRoundedOnce) {
  // ChunkedOptions::split_state off: the state rounded once per chunk to bfloat16. With decay it
  // meets the same bound; without decay it does not (measured about 3.3e-3 for delta), which is
  // why the split is the default.
  for (auto rule : {LINATTN_RULE_GATED, LINATTN_RULE_GATED_DELTA}) {
    Cfg c;
    c.T = 4096;
    c.rule = rule;
    c.split = false;
    check(c);
  }
}

TEST(ChunkedPrefill, WholeHead) {
  // The final pass on whole value heads (d_k = d_v = 128, the delta rules, one query head per
  // state, no state split: the library's choice for gated_delta) against the slab form (head =
  // 0): both activation types, partial chunks of three sequences, unaligned rows, key heads
  // shared by value heads, in place across windows, bfloat16 and float16 states, no past,
  // prefix segments by the rule and forced (three, four), the local pass with the combine, and
  // a longer call.
  for (auto act : {LINATTN_BFLOAT16, LINATTN_FLOAT16}) {
    for (int head : {1, 0}) {
      Cfg c;
      c.act = act;
      c.T = 1000;
      c.split = false;
      c.head = head;
      check(c);
    }
  }
  Cfg c;
  c.split = false;
  c.head = 1;
  c.T = 700;
  check_final_pass_cases(c);
  c.Hq = 2; c.Hk = 2; c.Hkv = 6;
  check(c);
  c.Hkv = 2;
  c.past = LINATTN_FLOAT16;
  c.has_past = false;
  check(c);
  c.has_past = true;
  c.past = LINATTN_FLOAT32;
  c.T = 1500;
  for (int segs : {3, 4}) {
    c.segments = segs;
    c.prefix = 1;
    check(c);
  }
  c.segments = 0;
  c.prefix = -1;
  c.T = 4096;
  check(c);
}

TEST(ChunkedPrefill, Supports) {
  LinearAttentionParams p;
  p.dk = 128; p.dv = 128; p.act_dtype = LINATTN_BFLOAT16;
  EXPECT_TRUE(cuda::chunked_prefill_supports(p));
  p.act_dtype = LINATTN_FLOAT32;
  EXPECT_FALSE(cuda::chunked_prefill_supports(p));
  p.act_dtype = LINATTN_FLOAT16;
  p.dk = 96;
  EXPECT_FALSE(cuda::chunked_prefill_supports(p));
  p.dk = 64;
  int dummy = 0;
  p.decay = &dummy;
  p.decay_per_key_dim = true;
  EXPECT_FALSE(cuda::chunked_prefill_supports(p));
  EXPECT_EQ(cuda::chunked_prefill_workspace_bytes(p), 0u);
}

__global__ void probe_kernel() {}

TEST(ChunkedPrefill, FitsDeviceSharedMemory) {
  // The dispatch takes the chunked path only where the device grants the scan's shared memory
  // per block: what this device grants, and the parts of other classes by their opt-in limits
  // (sm_90 227 KB, sm_80 163 KB, sm_86 / sm_89 99 KB).
  for (int dk : {64, 128}) {
    EXPECT_LE(cuda::chunked_prefill_smem_bytes(dk), 227u * 1024) << "d_k " << dk << " must run on sm_90";
    EXPECT_GT(cuda::chunked_prefill_smem_bytes(dk), 99u * 1024) << "d_k " << dk << ": the 99 KB parts would run it; update the docs";
  }
  EXPECT_LE(cuda::chunked_prefill_smem_bytes(64), 163u * 1024);
  EXPECT_GT(cuda::chunked_prefill_smem_bytes(128), 163u * 1024);
  // A device that does not exist grants nothing: the dispatch falls back, the entry says why.
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) n = 0;
  (void)cudaGetLastError();
  EXPECT_FALSE(cuda::chunked_prefill_fits_device(128, n));
  const Status st = cuda::chunked_prefill_check_device(128, n);
  EXPECT_EQ(st.code(), LINATTN_ERROR_UNSUPPORTED);
  EXPECT_NE(st.message().find("bytes of shared memory per block, device " + std::to_string(n)), std::string::npos)
      << st.message();
  (void)cudaGetLastError();
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  int dev = 0, optin = 0;
  ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), cudaSuccess);
  for (int dk : {64, 128}) {
    const size_t need = cuda::chunked_prefill_smem_bytes(dk);
    EXPECT_EQ(cuda::chunked_prefill_fits_device(dk, dev), need <= static_cast<size_t>(optin)) << "d_k " << dk;
    EXPECT_EQ(cuda::chunked_prefill_check_device(dk, dev).ok(), need <= static_cast<size_t>(optin));
  }
  // The final pass holds an SM alone. Where the code this device runs was compiled for sm_90a
  // (PTX version 90 or more for this file's probe kernel, built with the same flags: the test
  // bulk_copy_available() makes; an sm_80 build runs here from compute_80 PTX), the local pass
  // (the chain and the loads, no outputs) fits twice, so the segments' first launch runs up to
  // two chains per SM; other builds keep one local CTA per SM (the chain takes the launch's
  // registers).
  cudaFuncAttributes fa{};
  ASSERT_EQ(cudaFuncGetAttributes(&fa, probe_kernel), cudaSuccess);
  for (int dk : {64, 128}) {
    if (!cuda::chunked_prefill_fits_device(dk, dev)) continue;
    EXPECT_EQ(cuda::chunked_prefill_scan_ctas_per_sm(dk, false), 1) << "d_k " << dk;
    EXPECT_EQ(cuda::chunked_prefill_scan_ctas_per_sm(dk, true), fa.ptxVersion >= 90 ? 2 : 1)
        << "d_k " << dk << ", code from compute_" << fa.ptxVersion;
  }
  // The paired slab CTAs (clusters of two final-pass CTAs) fit on sm_90, where the PW form runs.
  if (fa.ptxVersion >= 90 && cuda::chunked_prefill_fits_device(128, dev)) {
    EXPECT_TRUE(cuda::chunked_prefill_slab_pairs_fit());
  }
}

}  // namespace
}  // namespace linattn::detail
