// `linattn run --scenario serving-overhead`: what the serving path costs over the dense one on
// the same work. Decode: B sequences of one token with the state in place, dense (B, H_kv, d_k,
// d_v) against a pool twice as large addressed through shuffled state_indices with the tokens
// packed by cu_seqlens. Prefill: B sequences of L tokens, dense (B, L, ...) against the same
// tokens packed (1, B*L, ...) with cu_seqlens. Conv decode: B channels-last tokens (C = 8192,
// and C = 64 to show the per-call and per-sequence costs alone, k = 4) with the state in place,
// against a pool as above addressed in order (identity slots) and shuffled. Calls alternate
// (dense, serving) so that drift hits both; the median of each is reported.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "run_serving.hpp"

namespace linattn::tool {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Shape {
  int64_t B, T, Hq, Hkv, dk, dv;
};

// Times dense vs serving calls of one shape; `pool` selects decode-style pooled states.
bool compare(Context& ctx, const Shape& s, bool pool, int repeat, std::mt19937_64& rng,
             double* dense_s, double* serving_s) {
  const int64_t Hout = std::max(s.Hq, s.Hkv), n = s.B * s.T;
  std::normal_distribution<float> n01;
  auto random = [&](int64_t count, float scale, float shift) {
    std::vector<float> v(static_cast<size_t>(count));
    for (float& x : v) x = shift + scale * n01(rng);
    return v;
  };
  std::vector<float> q = random(n * s.Hq * s.dk, 0.1f, 0.f), k = random(n * s.Hq * s.dk, 0.1f, 0.f);
  std::vector<float> v = random(n * s.Hkv * s.dv, 1.f, 0.f);
  std::vector<float> g = random(n * s.Hkv, 0.01f, -0.05f), b = random(n * s.Hkv, 0.1f, 0.5f);
  std::vector<float> out(static_cast<size_t>(n * Hout * s.dv));
  const int64_t block = s.Hkv * s.dk * s.dv, slots = pool ? 2 * s.B : s.B;
  std::vector<float> state = random(slots * block, 0.01f, 0.f);

  LinearAttentionArgs dense = default_linear_attention_args();
  dense.q_num_heads = static_cast<int32_t>(s.Hq);
  dense.kv_num_heads = static_cast<int32_t>(s.Hkv);
  dense.query = make_tensor(q.data(), LINATTN_FLOAT32, {s.B, s.T, s.Hq * s.dk});
  dense.key = make_tensor(k.data(), LINATTN_FLOAT32, {s.B, s.T, s.Hq * s.dk});
  dense.value = make_tensor(v.data(), LINATTN_FLOAT32, {s.B, s.T, s.Hkv * s.dv});
  dense.decay = make_tensor(g.data(), LINATTN_FLOAT32, {s.B, s.T, s.Hkv});
  dense.beta = make_tensor(b.data(), LINATTN_FLOAT32, {s.B, s.T, s.Hkv});
  dense.output = make_tensor(out.data(), LINATTN_FLOAT32, {s.B, s.T, Hout * s.dv});
  dense.past_state = dense.present_state =
      make_tensor(state.data(), LINATTN_FLOAT32, {s.B, s.Hkv, s.dk, s.dv});

  LinearAttentionArgs serving = dense;
  serving.query = make_tensor(q.data(), LINATTN_FLOAT32, {1, n, s.Hq * s.dk});
  serving.key = make_tensor(k.data(), LINATTN_FLOAT32, {1, n, s.Hq * s.dk});
  serving.value = make_tensor(v.data(), LINATTN_FLOAT32, {1, n, s.Hkv * s.dv});
  serving.decay = make_tensor(g.data(), LINATTN_FLOAT32, {1, n, s.Hkv});
  serving.beta = make_tensor(b.data(), LINATTN_FLOAT32, {1, n, s.Hkv});
  serving.output = make_tensor(out.data(), LINATTN_FLOAT32, {1, n, Hout * s.dv});
  std::vector<int64_t> cu(static_cast<size_t>(s.B + 1)), slot(static_cast<size_t>(slots));
  for (int64_t i = 0; i <= s.B; ++i) cu[i] = i * s.T;
  std::iota(slot.begin(), slot.end(), 0);
  std::shuffle(slot.begin(), slot.end(), rng);
  serving.serving.cu_seqlens = make_tensor(cu.data(), LINATTN_INT64, {s.B + 1});
  if (pool) {
    serving.past_state = absent();  // the pool is read and updated in place
    serving.present_state =
        make_tensor(state.data(), LINATTN_FLOAT32, {slots, s.Hkv, s.dk, s.dv});
    serving.serving.state_indices = make_tensor(slot.data(), LINATTN_INT64, {s.B});
  }

  std::vector<double> td, ts;
  for (int i = 0; i < repeat + 1; ++i) {
    for (int which = 0; which < 2; ++which) {
      const auto t0 = std::chrono::steady_clock::now();
      Status st = linear_attention(ctx, which == 0 ? dense : serving);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!st.ok()) {
        std::fprintf(stderr, "error: %s call: %s\n", which == 0 ? "dense" : "serving",
                     st.to_string().c_str());
        return false;
      }
      if (i > 0) (which == 0 ? td : ts).push_back(secs);  // the first round warms up
    }
  }
  *dense_s = median(td);
  *serving_s = median(ts);
  return true;
}

// The conv decode step: B sequences of one token, C channels, k = 4, SiLU, channels last,
// dense (B, 1, C) with the (B, C, 3) state in place against the same tokens packed (1, B, C)
// with cu_seqlens over a pool twice as large, addressed two ways: identity slots (sequence n in
// slot n: the dense call's addresses, so the difference to dense is the serving path's own cost)
// and shuffled slots (scattered state rows). The three calls alternate.
struct ConvTimes {
  double dense = 0, identity = 0, shuffled = 0;
};

bool compare_conv(Context& ctx, int64_t B, int64_t C, int repeat, std::mt19937_64& rng,
                  ConvTimes* out) {
  const int64_t K = 4, slots = 2 * B;
  std::normal_distribution<float> n01;
  auto random = [&](int64_t count) {
    std::vector<float> v(static_cast<size_t>(count));
    for (float& x : v) x = n01(rng);
    return v;
  };
  std::vector<float> x = random(B * C), w = random(C * K), bias = random(C);
  std::vector<float> y(static_cast<size_t>(B * C)), state = random(slots * C * (K - 1));
  CausalConvArgs dense = default_causal_conv_args();
  dense.activation = LINATTN_ACTIVATION_SILU;
  dense.channels_last = 1;
  dense.input = make_tensor(x.data(), LINATTN_FLOAT32, {B, 1, C});
  dense.weight = make_tensor(w.data(), LINATTN_FLOAT32, {C, 1, K});
  dense.bias = make_tensor(bias.data(), LINATTN_FLOAT32, {C});
  dense.output = make_tensor(y.data(), LINATTN_FLOAT32, {B, 1, C});
  dense.past_state = dense.present_state =
      make_tensor(state.data(), LINATTN_FLOAT32, {B, C, K - 1});
  std::vector<int64_t> cu(static_cast<size_t>(B + 1)), ident(static_cast<size_t>(slots)),
      shuffled(static_cast<size_t>(slots));
  for (int64_t i = 0; i <= B; ++i) cu[i] = i;
  std::iota(ident.begin(), ident.end(), 0);
  shuffled = ident;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  CausalConvArgs pooled[2] = {dense, dense};
  std::vector<int64_t>* const order[2] = {&ident, &shuffled};
  for (int v = 0; v < 2; ++v) {
    CausalConvArgs& a = pooled[v];
    a.input = make_tensor(x.data(), LINATTN_FLOAT32, {1, B, C});
    a.output = make_tensor(y.data(), LINATTN_FLOAT32, {1, B, C});
    a.past_state = absent();
    a.present_state = make_tensor(state.data(), LINATTN_FLOAT32, {slots, C, K - 1});
    a.serving.cu_seqlens = make_tensor(cu.data(), LINATTN_INT64, {B + 1});
    a.serving.state_indices = make_tensor(order[v]->data(), LINATTN_INT64, {B});
  }
  std::vector<double> t[3];
  for (int i = 0; i < repeat + 1; ++i) {
    for (int which = 0; which < 3; ++which) {
      const auto t0 = std::chrono::steady_clock::now();
      Status st = causal_conv(ctx, which == 0 ? dense : pooled[which - 1]);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!st.ok()) {
        static const char* const names[3] = {"dense", "identity pool", "shuffled pool"};
        std::fprintf(stderr, "error: conv %s call: %s\n", names[which], st.to_string().c_str());
        return false;
      }
      if (i > 0) t[which].push_back(secs);
    }
  }
  out->dense = median(t[0]);
  out->identity = median(t[1]);
  out->shuffled = median(t[2]);
  return true;
}

}  // namespace

int run_serving_overhead(const ServingScenarioOptions& o, int batch, int prompt_len, int repeat) {
  if (o.backend != LINATTN_BACKEND_CPU) {
    std::fprintf(stderr, "error: --scenario serving-overhead times the cpu backend only\n");
    return kExitUsage;
  }
  Context ctx;
  if (!open_context(o.backend, o.threads, &ctx)) return kExitFailure;
  std::mt19937_64 rng(static_cast<uint64_t>(o.seed));
  std::printf("linattn run --scenario serving-overhead: cpu, H_q=n_k=%d H_kv=%d d_k=%d d_v=%d, "
              "gated_delta, float32, median of %d alternating calls\n",
              o.q_heads, o.kv_heads, o.dk, o.dv, repeat);
  struct Case { const char* name; Shape s; bool pool; };
  const Case cases[] = {
      {"decode, state pool (shuffled slots)", {batch, 1, o.q_heads, o.kv_heads, o.dk, o.dv}, true},
      {"prefill, varlen (cu_seqlens)", {std::max(1, batch / 8), prompt_len, o.q_heads, o.kv_heads,
                                        o.dk, o.dv}, false},
  };
  for (const Case& c : cases) {
    double d = 0, s = 0;
    if (!compare(ctx, c.s, c.pool, repeat, rng, &d, &s)) return kExitFailure;
    const double tokens = double(c.s.B) * c.s.T;
    std::printf("  %-38s B=%lld T=%lld: dense %9.3f ms (%10.1f tok/s), serving %9.3f ms "
                "(%10.1f tok/s), overhead %+.1f%%\n",
                c.name, (long long)c.s.B, (long long)c.s.T, d * 1e3, tokens / d, s * 1e3,
                tokens / s, (s / d - 1) * 100);
  }
  // C = 8192 is the reference shape; C = 64 (one short item per sequence) shows the per-call
  // and per-sequence costs of the serving path with hardly any kernel time.
  for (const int64_t C : {int64_t{8192}, int64_t{64}}) {
    ConvTimes c;
    if (!compare_conv(ctx, batch, C, repeat, rng, &c)) return kExitFailure;
    std::printf("  %-38s B=%lld C=%lld: dense %9.4f ms, pool identity %9.4f ms (%+.1f%%), "
                "shuffled %9.4f ms (%+.1f%%)\n",
                "conv decode k=4, state pool", (long long)batch, (long long)C, c.dense * 1e3,
                c.identity * 1e3, (c.identity / c.dense - 1) * 100, c.shuffled * 1e3,
                (c.shuffled / c.dense - 1) * 100);
  }
  return kExitOk;
}

}  // namespace linattn::tool
