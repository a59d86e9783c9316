#include "cpu_cases.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "core/dtype.hpp"
#include "linattn/linattn.h"

namespace linattn::bench {
namespace {

using detail::float_to_bf16_bits;
using detail::float_to_f16_bits;

constexpr int64_t kChunk = 64;              // C in the chunked-form FLOP count
constexpr double kRotateBytes = 256.0 * (1 << 20);  // decode: state copies >> last-level cache

linattn_dtype dtype_of(const std::string& s) {
  if (s == "bf16") return LINATTN_BFLOAT16;
  if (s == "f16") return LINATTN_FLOAT16;
  return LINATTN_FLOAT32;
}
int64_t dsize(const std::string& s) { return s == "f32" ? 4 : 2; }

linattn_update_rule rule_of(const std::string& s) {
  if (s == "linear") return LINATTN_RULE_LINEAR;
  if (s == "gated") return LINATTN_RULE_GATED;
  if (s == "delta") return LINATTN_RULE_DELTA;
  return LINATTN_RULE_GATED_DELTA;
}
bool rule_gated(const std::string& r) { return r == "gated" || r == "gated_delta"; }
bool rule_delta(const std::string& r) { return r == "delta" || r == "gated_delta"; }

// A fast deterministic generator: inputs must be realistic and never zero-filled, but filling
// hundreds of MiB must not dominate the run.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float uniform() {  // (-1, 1)
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<float>(static_cast<int64_t>(s >> 40) - (1 << 23)) / (1 << 23);
  }
  float normalish() { return 1.7f * (uniform() + uniform() + uniform()) / 1.7320508f; }
};

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using Bytes = std::unique_ptr<char, FreeDeleter>;

// Large buffers on 2 MiB boundaries with transparent huge pages requested, as an inference
// engine's arena would have them: the strided per-head reads of a long prefill otherwise pay a
// TLB miss per token row.
Bytes alloc_bytes(size_t n) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t align = n >= kHuge ? kHuge : 64;
  const size_t size = (n + align - 1) / align * align;
  char* p = static_cast<char*>(std::aligned_alloc(align, size));
#if defined(MADV_HUGEPAGE)
  if (p != nullptr && align == kHuge) madvise(p, size, MADV_HUGEPAGE);
#endif
  return Bytes(p);
}

// A host buffer of n elements of dtype `t`, filled from f(i) as float.
struct Buf {
  Bytes mem;
  linattn_dtype t = LINATTN_FLOAT32;
  int64_t n = 0;
  template <class F>
  void fill(linattn_dtype type, int64_t count, F f) {
    t = type;
    n = count;
    const int64_t es = type == LINATTN_FLOAT32 ? 4 : 2;
    mem = alloc_bytes(static_cast<size_t>(std::max<int64_t>(count, 1) * es));
    for (int64_t i = 0; i < count; ++i) {
      const float x = f(i);
      if (type == LINATTN_FLOAT32) {
        reinterpret_cast<float*>(mem.get())[i] = x;
      } else {
        reinterpret_cast<uint16_t*>(mem.get())[i] =
            type == LINATTN_BFLOAT16 ? float_to_bf16_bits(x) : float_to_f16_bits(x);
      }
    }
  }
  linattn_tensor view(std::initializer_list<int64_t> shape) {
    linattn_tensor v{};
    v.data = mem.get();
    v.dtype = t;
    v.memory = LINATTN_MEMORY_HOST;
    v.rank = static_cast<int32_t>(shape.size());
    int i = 0;
    for (int64_t s : shape) v.shape[i++] = s;
    int64_t st = 1;
    for (int d = v.rank - 1; d >= 0; --d) {
      v.strides[d] = st;
      st *= v.shape[d];
    }
    return v;
  }
};

// Unit-norm rows of d elements (q and k of the delta rules are L2-normalised).
std::vector<float> unit_rows(int64_t rows, int64_t d, Rng& r) {
  std::vector<float> x(static_cast<size_t>(rows * d));
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) {
      const float v = r.normalish();
      x[i * d + j] = v;
      s += double(v) * v;
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(s + 1e-6));
    for (int64_t j = 0; j < d; ++j) x[i * d + j] *= inv;
  }
  return x;
}

struct AttentionSet {
  Buf q, k, v, decay, beta, out, state;
};
struct ConvSet {
  Buf x, y, state;
};

double seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Calls `call(set)` once to warm up, then `reps` times over rotating sets; fills `out`.
template <class Call>
bool time_calls(int nsets, double target_s, Call call, CpuResult* out, std::string* err) {
  auto t0 = std::chrono::steady_clock::now();
  if (!call(0)) {
    *err = linattn_last_error();
    return false;
  }
  const double warm = seconds(t0, std::chrono::steady_clock::now());
  const int reps = static_cast<int>(std::clamp(target_s / std::max(warm, 1e-7), 3.0, 400.0));
  std::vector<double> ts;
  ts.reserve(reps);
  for (int r = 0; r < reps; ++r) {
    const int s = (r + 1) % nsets;
    const auto a = std::chrono::steady_clock::now();
    const bool ok = call(s);
    const auto b = std::chrono::steady_clock::now();
    if (!ok) {
      *err = linattn_last_error();
      return false;
    }
    ts.push_back(seconds(a, b));
  }
  std::sort(ts.begin(), ts.end());
  out->reps = reps;
  out->best_s = ts.front();
  out->median_s = ts.size() % 2 ? ts[ts.size() / 2]
                                : 0.5 * (ts[ts.size() / 2 - 1] + ts[ts.size() / 2]);
  return true;
}

int sets_for(double bytes_per_set, bool rotate) {
  if (!rotate) return 1;
  return static_cast<int>(std::clamp(std::ceil(kRotateBytes / bytes_per_set), 2.0, 4096.0));
}

}  // namespace

std::string CpuCase::name() const {
  std::string n;
  if (op == "conv") {
    n = "conv_" + phase + "_C" + std::to_string(C) + "_B" + std::to_string(B);
    if (phase == "prefill") n += "_L" + std::to_string(L);
    n += silu ? "_silu" : "_none";
  } else {
    n = phase + "_" + rule + "_h" + std::to_string(Hq) + "x" + std::to_string(Hkv) + "_B" +
        std::to_string(B);
    if (phase == "prefill") n += "_T" + std::to_string(T);
    if (dk != 128 || dv != 128) n += "_d" + std::to_string(dk) + "x" + std::to_string(dv);
  }
  n += "_" + dtype;
  if (state_dtype != "f32") n += "_state-" + state_dtype;
  return n;
}

double CpuCase::bytes() const {
  const double a = static_cast<double>(dsize(dtype)), s = static_cast<double>(dsize(state_dtype));
  if (op == "conv")
    return double(B) * C * L * 2 * a + 2.0 * B * C * (K - 1) * s + double(C) * (K + 1) * a;
  const int32_t Hout = std::max(Hq, Hkv);
  double per_token = double(Hq) * dk + double(Hq) * dk + double(Hkv) * dv + double(Hout) * dv;
  if (rule_gated(rule)) per_token += Hkv;
  if (rule_delta(rule)) per_token += Hkv;
  return double(B) * T * per_token * a + 2.0 * B * Hkv * double(dk) * dv * s;
}

double CpuCase::flops() const {
  if (op == "conv") return 2.0 * K * B * C * L;
  const double d = static_cast<double>(dk), e = static_cast<double>(dv);
  if (phase == "decode") return 2.0 * 4.0 * d * e * B * T * Hkv;  // r, update, decay, readout
  // FLOPs of the chunked form (DESIGN.md, CHUNKED.md): 6 dk dv + 5.25 C dk + 4 C dv per token per
  // value head, about 174 kFLOP at d = 128, C = 64 (the state terms 3 dk dv multiply-adds = 6 dk dv
  // FLOPs, the intra-chunk terms counted with dense tiles).
  return (6.0 * d * e + 5.25 * kChunk * d + 4.0 * kChunk * e) * B * T * Hkv;
}

std::vector<CpuCase> cpu_sweep(bool quick) {
  std::vector<CpuCase> v;
  struct Heads { int32_t q, kv; };
  const Heads ref{16, 32};
  const Heads slices[] = {{16, 32}, {8, 16}, {4, 8}, {2, 8}};
  auto att = [&](const char* phase, Heads h, int64_t B, int64_t T, const char* rule,
                 const char* dt, const char* st) {
    CpuCase c;
    c.op = "attention";
    c.phase = phase;
    c.Hq = h.q;
    c.Hkv = h.kv;
    c.B = B;
    c.T = T;
    c.rule = rule;
    c.dtype = dt;
    c.state_dtype = st;
    v.push_back(c);
  };
  auto conv = [&](const char* phase, int64_t C, int64_t B, int64_t L, const char* dt,
                  const char* st) {
    CpuCase c;
    c.op = "conv";
    c.phase = phase;
    c.C = C;
    c.B = B;
    c.L = L;
    c.dtype = dt;
    c.state_dtype = st;
    v.push_back(c);
  };
  // The target rows first.
  att("prefill", ref, 1, 8192, "gated_delta", "f32", "f32");
  att("decode", ref, 1, 1, "gated_delta", "f32", "f32");
  att("decode", ref, 32, 1, "gated_delta", "f32", "f32");
  conv("prefill", 8192, 1, 4096, "f32", "f32");
  conv("decode", 8192, 32, 1, "f32", "f32");
  // bfloat16 activations with a float32 state.
  att("prefill", ref, 1, 8192, "gated_delta", "bf16", "f32");
  att("decode", ref, 1, 1, "gated_delta", "bf16", "f32");
  att("decode", ref, 32, 1, "gated_delta", "bf16", "f32");
  conv("prefill", 8192, 1, 4096, "bf16", "f32");
  conv("decode", 8192, 32, 1, "bf16", "f32");
  if (quick) {
    for (int64_t T : {512, 2048}) att("prefill", ref, 1, T, "gated_delta", "f32", "f32");
    return v;
  }
  // Throughput against length (the plot).
  for (int64_t T : {64, 256, 1024, 2048, 4096})
    att("prefill", ref, 1, T, "gated_delta", "f32", "f32");
  // Tensor-parallel slices.
  for (const Heads& h : slices) {
    if (h.q == ref.q && h.kv == ref.kv) continue;
    att("prefill", h, 1, 8192, "gated_delta", "f32", "f32");
    att("decode", h, 1, 1, "gated_delta", "f32", "f32");
    att("decode", h, 32, 1, "gated_delta", "f32", "f32");
  }
  // Batch.
  att("prefill", ref, 4, 2048, "gated_delta", "f32", "f32");
  for (int64_t B : {8, 128}) att("decode", ref, B, 1, "gated_delta", "f32", "f32");
  // Rules.
  for (const char* r : {"linear", "gated", "delta"}) {
    att("prefill", ref, 1, 4096, r, "f32", "f32");
    att("decode", ref, 32, 1, r, "f32", "f32");
  }
  // 16-bit states and float16 activations.
  att("decode", ref, 32, 1, "gated_delta", "bf16", "bf16");
  att("prefill", ref, 1, 4096, "gated_delta", "f16", "f32");
  conv("prefill", 8192, 1, 4096, "bf16", "bf16");
  conv("decode", 8192, 32, 1, "bf16", "bf16");
  // Conv: channel counts of the slices, decode at B = 1.
  for (int64_t C : {4096, 2048}) conv("prefill", C, 1, 4096, "f32", "f32");
  conv("decode", 8192, 1, 1, "f32", "f32");
  return v;
}

bool run_cpu_case(const CpuCase& c, int threads, double target_s, const CpuCeilings& ceil,
                  CpuResult* out, std::string* err) {
  linattn_context_options o = linattn_context_default_options();
  o.backend = LINATTN_BACKEND_CPU;
  o.num_threads = threads;
  linattn_context* ctx = nullptr;
  if (linattn_context_create(&o, &ctx) != LINATTN_OK) {
    *err = linattn_last_error();
    return false;
  }
  std::unique_ptr<linattn_context, void (*)(linattn_context*)> guard(ctx, linattn_context_destroy);
  const linattn_dtype at = dtype_of(c.dtype), st = dtype_of(c.state_dtype);
  const bool decode = c.phase == "decode";
  const int nsets = sets_for(c.bytes(), decode);
  Rng rng(12345);
  bool ok = false;

  if (c.op == "conv") {
    const int64_t S = c.K - 1;
    Buf w, bias;
    w.fill(at, c.C * c.K, [&](int64_t) { return 0.5f * rng.uniform(); });
    bias.fill(at, c.C, [&](int64_t) { return 0.1f * rng.uniform(); });
    std::vector<ConvSet> sets(static_cast<size_t>(nsets));
    for (ConvSet& s : sets) {
      s.x.fill(at, c.B * c.C * c.L, [&](int64_t) { return rng.normalish(); });
      s.y.fill(at, c.B * c.C * c.L, [](int64_t) { return 0.f; });
      s.state.fill(st, c.B * c.C * S, [&](int64_t) { return rng.normalish(); });
    }
    ok = time_calls(nsets, target_s, [&](int i) {
      ConvSet& s = sets[static_cast<size_t>(i)];
      linattn_causal_conv_args a{};
      a.activation = c.silu ? LINATTN_ACTIVATION_SILU : LINATTN_ACTIVATION_NONE;
      a.channels_last = 0;
      a.input = s.x.view({c.B, c.C, c.L});
      a.weight = w.view({c.C, 1, c.K});
      a.bias = bias.view({c.C});
      a.past_state = s.state.view({c.B, c.C, S});
      a.output = s.y.view({c.B, c.C, c.L});
      a.present_state = a.past_state;  // in place, as a serving engine updates its cache
      return linattn_causal_conv(ctx, &a) == LINATTN_OK;
    }, out, err);
  } else {
    const int32_t Hout = std::max(c.Hq, c.Hkv);
    const bool gated = rule_gated(c.rule), delta = rule_delta(c.rule);
    std::vector<AttentionSet> sets(static_cast<size_t>(nsets));
    for (AttentionSet& s : sets) {
      const int64_t rows = c.B * c.T;
      std::vector<float> q = unit_rows(rows * c.Hq, c.dk, rng);
      std::vector<float> k = unit_rows(rows * c.Hq, c.dk, rng);
      s.q.fill(at, rows * c.Hq * c.dk, [&](int64_t i) { return q[i]; });
      s.k.fill(at, rows * c.Hq * c.dk, [&](int64_t i) { return k[i]; });
      s.v.fill(at, rows * c.Hkv * c.dv, [&](int64_t) { return rng.normalish(); });
      // g = logsigmoid(N + 3) (slow forgetting), beta = sigmoid(N).
      s.decay.fill(at, rows * c.Hkv, [&](int64_t) {
        const float x = rng.normalish() + 3.f;
        return -std::log1p(std::exp(-x));
      });
      s.beta.fill(at, rows * c.Hkv, [&](int64_t) { return 1.f / (1.f + std::exp(-rng.normalish())); });
      s.out.fill(at, rows * Hout * c.dv, [](int64_t) { return 0.f; });
      s.state.fill(st, c.B * c.Hkv * c.dk * c.dv, [&](int64_t) { return 0.05f * rng.normalish(); });
    }
    ok = time_calls(nsets, target_s, [&](int i) {
      AttentionSet& s = sets[static_cast<size_t>(i)];
      linattn_linear_attention_args a{};
      a.q_num_heads = c.Hq;
      a.kv_num_heads = c.Hkv;
      a.update_rule = rule_of(c.rule);
      a.query = s.q.view({c.B, c.T, int64_t(c.Hq) * c.dk});
      a.key = s.k.view({c.B, c.T, int64_t(c.Hq) * c.dk});
      a.value = s.v.view({c.B, c.T, int64_t(c.Hkv) * c.dv});
      a.past_state = s.state.view({c.B, c.Hkv, c.dk, c.dv});
      a.decay = gated ? s.decay.view({c.B, c.T, c.Hkv}) : linattn_tensor_absent();
      a.beta = delta ? s.beta.view({c.B, c.T, c.Hkv}) : linattn_tensor_absent();
      a.output = s.out.view({c.B, c.T, int64_t(Hout) * c.dv});
      a.present_state = a.past_state;  // in place
      return linattn_linear_attention(ctx, &a) == LINATTN_OK;
    }, out, err);
  }
  if (!ok) return false;
  const double tf = c.flops() / (ceil.fma_gflops * 1e9), tb = c.bytes() / (ceil.copy_gbs * 1e9);
  out->roofline_s = std::max(tf, tb);
  out->bound = tf >= tb ? "fma" : "bw";
  return true;
}

}  // namespace linattn::bench
