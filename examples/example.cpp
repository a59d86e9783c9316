// One gated-delta LinearAttention call on the CPU through the C++ API: B=1, T=3 tokens,
// 2 query/key heads, 4 value heads (inverse GQA, as in Qwen3.5), d_k = d_v = 8.
#include <cmath>
#include <cstdio>
#include <vector>

#include "linattn/linattn.hpp"

int main() {
  const int B = 1, T = 3, Hq = 2, Hkv = 4, d = 8;
  std::vector<float> q(B * T * Hq * d), k(B * T * Hq * d), v(B * T * Hkv * d);
  std::vector<float> decay(B * T * Hkv, -0.1f), beta(B * T * Hkv, 0.5f);
  for (size_t i = 0; i < q.size(); ++i) q[i] = k[i] = std::sin(0.3f * i) / std::sqrt(float(d));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.2f * i);
  std::vector<float> out(B * T * Hkv * d), state(B * Hkv * d * d);

  linattn::Context ctx;
  linattn::Status st = linattn::Context::create(LINATTN_BACKEND_CPU, &ctx);
  if (!st) { std::fprintf(stderr, "%s\n", st.to_string().c_str()); return 1; }

  linattn::LinearAttentionArgs a = linattn::default_linear_attention_args();
  a.q_num_heads = Hq;
  a.kv_num_heads = Hkv;
  a.update_rule = LINATTN_RULE_GATED_DELTA;
  a.query = linattn::make_tensor(q.data(), LINATTN_FLOAT32, {B, T, Hq * d});
  a.key = linattn::make_tensor(k.data(), LINATTN_FLOAT32, {B, T, Hq * d});
  a.value = linattn::make_tensor(v.data(), LINATTN_FLOAT32, {B, T, Hkv * d});
  a.decay = linattn::make_tensor(decay.data(), LINATTN_FLOAT32, {B, T, Hkv});
  a.beta = linattn::make_tensor(beta.data(), LINATTN_FLOAT32, {B, T, Hkv});
  a.output = linattn::make_tensor(out.data(), LINATTN_FLOAT32, {B, T, Hkv * d});
  a.present_state = linattn::make_tensor(state.data(), LINATTN_FLOAT32, {B, Hkv, d, d});

  st = linattn::linear_attention(ctx, a);
  if (!st) { std::fprintf(stderr, "%s\n", st.to_string().c_str()); return 1; }
  std::printf("output[0] = %.6f\n", out[0]);
  return 0;
}
