// Independent bookkeeping for the serving tests: the test keeps its own model of every pool
// slot (key-major float64 blocks), works out what each sequence should read and write, and asks
// the float64 oracle (reference backend, dense calls, no serving field) for each sequence or
// token. The adapter under test is never consulted for the expected values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/cases.hpp"
#include "common/host_tensor.hpp"
#include "common/oracle_runner.hpp"
#include "linattn/linattn.hpp"

namespace linattn::test::serving {

using State = std::vector<double>;  // one slot, key-major (H_kv, d_k, d_v) or conv (C, k-1)

inline Context& backend_context(linattn_backend b) {
  return b == LINATTN_BACKEND_REFERENCE ? reference_context() : cpu_context(2);
}
inline const char* backend_label(linattn_backend b) {
  return b == LINATTN_BACKEND_REFERENCE ? "reference" : "cpu";
}

// Index tensors (int32 or int64) from values.
inline HostTensor index_tensor(linattn_dtype dt, const std::vector<int64_t>& v,
                               std::vector<int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  HostTensor t(dt, shape);
  std::vector<int64_t> off = t.logical_offsets();
  for (size_t i = 0; i < v.size(); ++i) {
    if (dt == LINATTN_INT32) static_cast<int32_t*>(t.data())[off[i]] = static_cast<int32_t>(v[i]);
    else static_cast<int64_t*>(t.data())[off[i]] = v[i];
  }
  return t;
}

inline std::vector<int64_t> cu_from_lengths(const std::vector<int64_t>& lens) {
  std::vector<int64_t> cu{0};
  for (int64_t l : lens) cu.push_back(cu.back() + l);
  return cu;
}

// The small LinearAttention shape of the serving tests: inverse GQA with key sharing (H_q = n_k
// = 2, H_kv = 4, as the Qwen3.5 layer), d_k = 16, d_v = 8, no past state.
inline LinearAttentionCase small_case(int64_t B, int64_t T, uint64_t seed,
                                      linattn_update_rule rule = LINATTN_RULE_GATED_DELTA) {
  LinearAttentionCase c;
  c.B = B;
  c.T = T;
  c.Hq = 2;
  c.Hk = 2;
  c.Hkv = 4;
  c.dk = 16;
  c.dv = 8;
  c.rule = rule;
  c.has_past = false;
  c.seed = seed;
  return c;
}

// ---- LinearAttention pools -----------------------------------------------------------------

// (slots, H_kv, d_k, d_v), or (slots, H_kv, d_v, d_k) when value-major; padded strides when
// `strided` (the slot stride then exceeds the block).
inline HostTensor make_pool(const LinearAttentionCase& c, int64_t slots, bool value_major,
                            bool strided, uint64_t seed) {
  HostTensor p(c.state_dtype, {slots, c.Hkv, value_major ? c.dv : c.dk, value_major ? c.dk : c.dv},
               strided);
  p.poison();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 0.1);
  p.set_values([&](int64_t) { return n01(rng); });
  return p;
}

inline State read_slot(const HostTensor& pool, int64_t slot, bool vm, const LinearAttentionCase& c) {
  State s(static_cast<size_t>(c.Hkv) * c.dk * c.dv);
  const auto& st = pool.strides();
  for (int64_t h = 0; h < c.Hkv; ++h)
    for (int64_t i = 0; i < c.dk; ++i)
      for (int64_t j = 0; j < c.dv; ++j) {
        const int64_t e = slot * st[0] + h * st[1] + (vm ? j * st[2] + i : i * st[2] + j);
        s[(h * c.dk + i) * c.dv + j] = pool.get(e);
      }
  return s;
}

inline std::vector<State> read_pool(const HostTensor& pool, bool vm, const LinearAttentionCase& c) {
  std::vector<State> m;
  for (int64_t s = 0; s < pool.shape()[0]; ++s) m.push_back(read_slot(pool, s, vm, c));
  return m;
}

// Rows [t0, t0 + len) of batch row b of a (B, T, W) tensor, as doubles.
inline std::vector<double> token_rows(const HostTensor& t, int64_t b, int64_t t0, int64_t len) {
  std::vector<double> v;
  const auto& st = t.strides();
  for (int64_t r = t0; r < t0 + len; ++r)
    for (int64_t x = 0; x < t.shape()[2]; ++x) v.push_back(t.get(b * st[0] + r * st[1] + x));
  return v;
}

struct OracleRun {
  std::vector<double> out;  // (len, H_out*d_v)
  State state;
};

// The dense oracle on tokens [t0, t0 + len) of batch row b of float64 inputs, from `init`
// (nullptr = zeros).
inline OracleRun oracle_range(const LinearAttentionCase& c, const LinearAttentionInputs& in64,
                              int64_t b, int64_t t0, int64_t len, const State* init) {
  LinearAttentionArgs a = default_linear_attention_args();
  a.q_num_heads = c.Hq;
  a.kv_num_heads = c.Hkv;
  a.update_rule = c.rule;
  a.scale = c.scale;
  auto sl = [&](const HostTensor& t) {
    if (!t.present()) return absent();
    return slice_view(slice_view(t.view(), 0, b, b + 1), 1, t0, t0 + len);
  };
  a.query = sl(in64.query);
  a.key = sl(in64.key);
  a.value = sl(in64.value);
  a.decay = sl(in64.decay);
  a.beta = sl(in64.beta);
  HostTensor past(LINATTN_FLOAT64, {1, c.Hkv, c.dk, c.dv});
  HostTensor pres(LINATTN_FLOAT64, {1, c.Hkv, c.dk, c.dv});
  HostTensor out(LINATTN_FLOAT64, {1, len, int64_t{c.Hout()} * c.dv});
  if (init) {
    past.set_values([&](int64_t i) { return (*init)[i]; });
    a.past_state = past.view();
  }
  a.present_state = pres.view();
  a.output = out.view();
  Status s = linear_attention(reference_context(), a);
  EXPECT_TRUE(s.ok()) << "oracle: " << s.to_string();
  return {out.values(), pres.values()};
}

inline double max_slot_error(const std::vector<State>& got, const std::vector<State>& want) {
  double e = 0;
  for (size_t s = 0; s < want.size(); ++s) e = std::max(e, rel_frobenius(got[s], want[s]));
  return e;
}

// ---- CausalConv pools ------------------------------------------------------------------------

inline HostTensor make_conv_pool(const CausalConvCase& c, int64_t slots, bool strided,
                                 uint64_t seed) {
  HostTensor p(c.state_dtype, {slots, c.C, c.K - 1}, strided);
  p.poison();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> n01(0.0, 1.0);
  p.set_values([&](int64_t) { return n01(rng); });
  return p;
}

inline State read_conv_slot(const HostTensor& pool, int64_t slot, const CausalConvCase& c) {
  State s;
  const auto& st = pool.strides();
  for (int64_t ch = 0; ch < c.C; ++ch)
    for (int64_t j = 0; j < c.K - 1; ++j) s.push_back(pool.get(slot * st[0] + ch * st[1] + j));
  return s;
}

inline std::vector<State> read_conv_pool(const HostTensor& pool, const CausalConvCase& c) {
  std::vector<State> m;
  for (int64_t s = 0; s < pool.shape()[0]; ++s) m.push_back(read_conv_slot(pool, s, c));
  return m;
}

// Output values (len, C) of tokens [t0, t0+len) of batch row b, in (l, c) order whatever the
// layout.
inline std::vector<double> conv_tokens(const HostTensor& t, bool cl, int64_t b, int64_t t0,
                                       int64_t len) {
  std::vector<double> v;
  const auto& st = t.strides();
  const int64_t C = cl ? t.shape()[2] : t.shape()[1];
  for (int64_t l = t0; l < t0 + len; ++l)
    for (int64_t ch = 0; ch < C; ++ch)
      v.push_back(t.get(b * st[0] + (cl ? l * st[1] + ch : ch * st[1] + l)));
  return v;
}

// The dense conv oracle on tokens [t0, t0 + len) of row b (float64 inputs), from `init`.
inline OracleRun conv_oracle_range(const CausalConvCase& c, const CausalConvInputs& in64,
                                   int64_t b, int64_t t0, int64_t len, const State* init) {
  CausalConvArgs a = default_causal_conv_args();
  a.activation = c.silu ? LINATTN_ACTIVATION_SILU : LINATTN_ACTIVATION_NONE;
  a.channels_last = c.channels_last;
  const int ld = c.channels_last ? 1 : 2;
  a.input = slice_view(slice_view(in64.input.view(), 0, b, b + 1), ld, t0, t0 + len);
  a.weight = in64.weight.view();
  a.bias = in64.bias.view();
  HostTensor past(LINATTN_FLOAT64, {1, c.C, c.K - 1});
  HostTensor pres(LINATTN_FLOAT64, {1, c.C, c.K - 1});
  HostTensor out(LINATTN_FLOAT64, c.channels_last ? std::vector<int64_t>{1, len, c.C}
                                                  : std::vector<int64_t>{1, c.C, len});
  if (init) {
    past.set_values([&](int64_t i) { return (*init)[i]; });
    a.past_state = past.view();
  }
  a.present_state = pres.view();
  a.output = out.view();
  Status s = causal_conv(reference_context(), a);
  EXPECT_TRUE(s.ok()) << "conv oracle: " << s.to_string();
  return {conv_tokens(out, c.channels_last, 0, 0, len), pres.values()};
}

}  // namespace linattn::test::serving
