// Serving extensions of CausalConvWithState on the CPU and reference backends: packed
// sequences (the window never mixes tokens of two sequences), conv-state pools with PAD and
// has_initial_state, speculative windows stored per token and resumed from the accepted one.
// Expected values come from dense oracle calls per sequence or per token.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "cpu/forced_isa.hpp"
#include "cpu/isa.hpp"
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

// ---- Decode-only batches -----------------------------------------------------------------------
// Every sequence of the call one token long: the CPU's batched rows then all share one work
// split, and an item finds its row by one division (src/cpu/causal_conv.cpp causal_conv_rows).
// C > 2048 splits a row into several decode-kernel items (k = 4, float32, channels last, AVX2);
// the other widths and bfloat16 split it into 256-channel items, channels first into 16-channel
// ones. Each case runs through a shuffled pool with unused slots, PAD sequences and rows that
// start from zeros (has_initial_state 0, or read_state_indices -1, whose rows the split must
// still treat as alike), compared element by element with the float64 oracle per sequence.

using detail::cpu::Isa;

struct DecodeBatch {
  int64_t N = 1, C = 64;  // sequences (PAD ones included), channels
  int32_t K = 4;
  linattn_dtype dtype = LINATTN_FLOAT32;  // activations and pool
  bool bias_silu = true;
  bool channels_last = true;
  bool packed = false;      // cu_seqlens over (1, N) tokens, else (N, 1) rows and no cu_seqlens
  bool read_other = false;  // read_state_indices: other (unused) slots, and -1 (zeros)
  bool pad_first = false;   // sequence 0 is PAD, so the first row is sequence 1
  uint64_t seed = 1;

  std::string label(int threads, const char* isa) const {
    std::ostringstream o;
    o << "N=" << N << " C=" << C << " K=" << K << " " << dtype_short_name(dtype)
      << (bias_silu ? " bias+silu" : " plain") << (channels_last ? " cl" : " cf")
      << (packed ? " packed" : " rows") << (read_other ? " read_other" : "")
      << (pad_first ? " pad_first" : "") << " threads=" << threads << " isa=" << isa;
    return o.str();
  }
};

// Layout, read pattern and the like vary with a hash of the case's seed (splitmix64), so that
// they do not move in step with the loops over shapes and dtypes.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Element-wise |got - want| <= tol * max(1, |want|); reports the first few misses.
void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int misses = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double d = std::fabs(got[i] - want[i]);
    if (!(d <= tol * std::max(1.0, std::fabs(want[i])))) {  // a NaN misses
      if (++misses <= 4)
        ADD_FAILURE() << what << ": element " << i << " got " << got[i] << ", want " << want[i];
    }
  }
  EXPECT_EQ(misses, 0) << what << ": " << misses << " of " << want.size() << " elements off";
}

// An unpadded (slots, C, k-1) pool, the decode kernel's state form: make_conv_pool's layout with
// uniform values in [-2, 2) from a cheap generator, since the largest pools hold ~1M values.
HostTensor decode_pool(const CausalConvCase& c, int64_t slots, uint64_t seed) {
  HostTensor p(c.state_dtype, {slots, c.C, c.K - 1});
  uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int64_t i = 0; i < p.storage_elements(); ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;  // xorshift64
    p.set(i, static_cast<double>(x >> 11) * 0x1p-51 - 2.0);
  }
  return p;
}

void run_decode_batch(Context& cx, const DecodeBatch& d, const std::string& label) {
  const int64_t N = d.N, slots = N + 3;
  CausalConvCase c;
  c.B = d.packed ? 1 : N;
  c.L = d.packed ? N : 1;
  c.C = d.C;
  c.K = d.K;
  c.bias = d.bias_silu;
  c.silu = d.bias_silu;
  c.channels_last = d.channels_last;
  c.act_dtype = c.state_dtype = d.dtype;
  c.has_past = false;
  c.seed = d.seed;
  const CausalConvInputs in = make_inputs(c), in64 = to_float64(in);

  // Sequences take slots in shuffled order; PAD at 1, 7, 13, ... (and 0 with pad_first); the
  // slots left over are written by nobody.
  std::mt19937_64 rng(d.seed * 31 + 7);
  std::vector<int64_t> perm(static_cast<size_t>(slots));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  std::vector<int64_t> slot(N), rd(N), init(N);
  size_t next = 0;
  for (int64_t n = 0; n < N; ++n) {
    const bool pad = n % 6 == 1 || (d.pad_first && n == 0);
    slot[n] = pad ? -1 : perm[next++];
    init[n] = n % 5 == 3 ? 0 : 1;
  }
  std::vector<int64_t> unused(perm.begin() + static_cast<int64_t>(next), perm.end());
  for (int64_t n = 0; n < N; ++n) {
    if (!d.read_other || n % 3 == 1) rd[n] = slot[n] < 0 ? 0 : slot[n];
    else if (n % 3 == 0) rd[n] = unused[static_cast<size_t>(n) % unused.size()];
    else rd[n] = -1;
  }

  HostTensor pool = decode_pool(c, slots, d.seed + 100);
  const std::vector<State> start = read_conv_pool(pool, c);
  const char* pool_bytes = static_cast<const char*>(pool.data());
  const std::vector<char> pool_before(pool_bytes, pool_bytes + pool.storage_bytes());

  HostTensor out = conv_output(c);
  CausalConvArgs a = conv_args(c, in, out, pool);
  a.activation = d.bias_silu ? LINATTN_ACTIVATION_SILU : LINATTN_ACTIVATION_NONE;
  std::vector<int64_t> cu(static_cast<size_t>(N) + 1);
  std::iota(cu.begin(), cu.end(), 0);
  const linattn_dtype idx = d.seed % 2 ? LINATTN_INT32 : LINATTN_INT64;
  const HostTensor cu_t = index_tensor(idx, cu), si = index_tensor(idx, slot);
  const HostTensor ri = index_tensor(LINATTN_INT64, rd), hi = index_tensor(LINATTN_INT32, init);
  if (d.packed) a.serving.cu_seqlens = cu_t.view();
  a.serving.state_indices = si.view();
  a.serving.has_initial_state = hi.view();
  if (d.read_other) a.serving.read_state_indices = ri.view();
  ASSERT_TRUE(causal_conv(cx, a).ok()) << label << ": " << linattn_last_error();

  const double otol = dtype_tolerance(c.act_dtype), stol = dtype_tolerance(c.state_dtype);
  std::vector<bool> written(static_cast<size_t>(slots), false);
  for (int64_t n = 0; n < N; ++n) {
    const int64_t b = d.packed ? 0 : n, t0 = d.packed ? n : 0;
    const std::vector<double> got = conv_tokens(out, c.channels_last, b, t0, 1);
    const std::string seq = label + ", seq " + std::to_string(n);
    if (slot[n] < 0) {
      int64_t nonzero = 0;
      for (double x : got) nonzero += x != 0.0;
      EXPECT_EQ(nonzero, 0) << seq << " (PAD): output not zero";
      continue;
    }
    const int64_t r = d.read_other ? rd[n] : slot[n];
    const State* from = init[n] && r >= 0 ? &start[r] : nullptr;
    const OracleRun o = conv_oracle_range(c, in64, b, t0, 1, from);
    expect_close(got, o.out, otol, seq + " output");
    expect_close(read_conv_slot(pool, slot[n], c), o.state, stol,
                 seq + " state (slot " + std::to_string(slot[n]) + ")");
    written[slot[n]] = true;
  }
  // Slots no sequence writes stay bit-identical (read-only sources included).
  const int64_t sb = pool.strides()[0];
  const size_t eb = dtype_bytes(pool.dtype());
  for (int64_t s = 0; s < slots; ++s) {
    if (written[s]) continue;
    const size_t off = static_cast<size_t>(s * sb) * eb, len = static_cast<size_t>(sb) * eb;
    EXPECT_EQ(std::memcmp(pool_bytes + off, pool_before.data() + off, len), 0)
        << label << ": slot " << s << " is written by no sequence but changed";
  }
  EXPECT_TRUE(out.padding_is_nan()) << label << ": write outside the output view";
}

// The CPU under every instruction set this machine runs, on 1 or 4 threads (4: the items of a
// call spread over the pool's workers); the reference backend on the 4-thread half.
TEST_P(ServingConv, DecodeOnlyBatchesThroughShuffledPool) {
  struct Shape { int64_t N, C; };
  const Shape shapes[] = {{5, 4100}, {7, 2049}, {32, 8192}, {3, 64}};
  const bool ref = GetParam() == LINATTN_BACKEND_REFERENCE;
  std::vector<Isa> isas{Isa::kPortable, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16};
  if (ref) isas = {detail::cpu::active_isa()};
  uint64_t seed = 40;
  for (Isa isa : isas) {
    ForcedIsa forced(isa);
    if (!forced.ok()) continue;
    for (int si = 0; si < 4; ++si)
      for (int32_t K : {4, 3})
        for (linattn_dtype dt : {LINATTN_FLOAT32, LINATTN_BFLOAT16})
          for (bool bias_silu : {true, false}) {
            // 1 or 4 threads so that every pair of (K, dtype, bias, threads) values occurs; the
            // portable kernels (no decode kernel) and the reference only the 4-thread half.
            const int threads = ((K == 4) != (dt == LINATTN_BFLOAT16)) == bias_silu ? 4 : 1;
            if (threads == 1 && (ref || isa == Isa::kPortable)) continue;
            const uint64_t h = mix(++seed);
            DecodeBatch d;
            d.N = shapes[si].N;
            d.C = shapes[si].C;
            d.K = K;
            d.dtype = dt;
            d.bias_silu = bias_silu;
            d.seed = seed;
            d.packed = (si + bias_silu + (K == 3)) % 2 == 1;  // both, on every kernel
            d.read_other = (h & 2) != 0;
            d.pad_first = h % 3 == 0;
            Context& cx = ref ? ctx() : cpu_context(threads);
            run_decode_batch(cx, d, d.label(ref ? 0 : threads, detail::cpu::isa_name(isa)));
          }
  }
}

// Channels first (the 16-channel items) and the decode shapes once more, 3 threads.
TEST_P(ServingConv, DecodeOnlyBatchesChannelsFirst) {
  struct Shape { int64_t N, C; };
  const Shape shapes[] = {{5, 4100}, {7, 2049}, {3, 64}};
  const bool ref = GetParam() == LINATTN_BACKEND_REFERENCE;
  uint64_t seed = 400;
  for (const Shape& sh : shapes)
    for (int32_t K : {4, 2})
      for (linattn_dtype dt : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
        DecodeBatch d;
        d.N = sh.N;
        d.C = sh.C;
        d.K = K;
        d.dtype = dt;
        d.channels_last = false;
        d.seed = ++seed;
        const uint64_t h = mix(seed);
        d.bias_silu = (h & 1) != 0;
        d.packed = (h & 2) != 0;
        d.read_other = (h & 4) != 0;
        d.pad_first = h % 3 == 0;
        Context& cx = ref ? ctx() : cpu_context(3);
        const char* isa = detail::cpu::isa_name(detail::cpu::active_isa());
        run_decode_batch(cx, d, d.label(ref ? 0 : 3, isa));
      }
}

INSTANTIATE_TEST_SUITE_P(Backends, ServingConv,
                         ::testing::Values(LINATTN_BACKEND_CPU, LINATTN_BACKEND_REFERENCE),
                         [](const auto& info) { return std::string(backend_label(info.param)); });

}  // namespace
}  // namespace linattn::test::serving
