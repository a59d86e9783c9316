// The float64 oracle of LinearAttention: the recurrence of SEMANTICS.md, token by token, one
// (batch, kv head) pair at a time, with the step numbers of the spec. Written to be obviously
// right, never fast; every optimised path is tested against it.
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/backend.hpp"
#include "core/thread_pool.hpp"
#include "reference/scalar_io.hpp"

namespace linattn::detail::reference {
namespace {

// The recurrence for one (b, h). S is d_k x d_v, row i = key dim i, column j = value dim j.
void run_head(const LinearAttentionParams& p, int64_t b, int32_t h) {
  const int64_t dk = p.dk, dv = p.dv;
  const int32_t hk = p.key_head(h);
  const int32_t G = p.q_per_kv();

  // Initial state: past_state or zeros. The whole (b, h) state is read into a local buffer
  // before anything is written, so present_state may alias past_state.
  std::vector<double> S(static_cast<size_t>(dk * dv), 0.0);
  if (p.past != nullptr) {
    for (int64_t i = 0; i < dk; ++i)
      for (int64_t j = 0; j < dv; ++j)
        S[i * dv + j] = load(p.past, b * p.past_sb + h * p.past_sh + i * p.past_sk + j,
                             p.past_dtype);
  }

  std::vector<double> k(dk), v(dv), q(dk), g(dk), r(dv), u(dv);
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t i = 0; i < dk; ++i)
      k[i] = load(p.k, b * p.k_sb + t * p.k_st + hk * dk + i, p.act_dtype);
    for (int64_t j = 0; j < dv; ++j)
      v[j] = load(p.v, b * p.v_sb + t * p.v_st + h * dv + j, p.act_dtype);

    // 1. gated, gated_delta: S <- diag(exp(g_t)) S (the per-head form has one g for all rows).
    if (p.gated) {
      for (int64_t i = 0; i < dk; ++i) {
        const int64_t idx = p.decay_per_key_dim ? h * dk + i : h;
        g[i] = load(p.decay, b * p.g_sb + t * p.g_st + idx, p.act_dtype);
      }
      for (int64_t i = 0; i < dk; ++i) {
        const double e = std::exp(g[i]);
        for (int64_t j = 0; j < dv; ++j) S[i * dv + j] *= e;
      }
    }

    if (p.delta) {
      // 2. delta, gated_delta: r = S^T k on the decayed S; u = beta (v - r); S <- S + k u^T.
      const double beta =
          load(p.beta, b * p.beta_sb + t * p.beta_st + (p.beta_shared ? 0 : h), p.act_dtype);
      for (int64_t j = 0; j < dv; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < dk; ++i) acc += S[i * dv + j] * k[i];
        r[j] = acc;
      }
      for (int64_t j = 0; j < dv; ++j) u[j] = beta * (v[j] - r[j]);
      for (int64_t i = 0; i < dk; ++i)
        for (int64_t j = 0; j < dv; ++j) S[i * dv + j] += k[i] * u[j];
    } else {
      // 3. linear, gated: S <- S + k v^T.
      for (int64_t i = 0; i < dk; ++i)
        for (int64_t j = 0; j < dv; ++j) S[i * dv + j] += k[i] * v[j];
    }

    // 4. Readout from the updated S, for every output head that reads this state:
    //    o_t = scale * S^T q_t with that head's own query.
    for (int32_t jq = 0; jq < G; ++jq) {
      const int32_t hq = p.query_head(h, jq);
      const int32_t ho = p.output_head(h, jq);
      for (int64_t i = 0; i < dk; ++i)
        q[i] = load(p.q, b * p.q_sb + t * p.q_st + hq * dk + i, p.act_dtype);
      for (int64_t j = 0; j < dv; ++j) {
        double acc = 0.0;
        for (int64_t i = 0; i < dk; ++i) acc += S[i * dv + j] * q[i];
        store(p.out, b * p.o_sb + t * p.o_st + ho * dv + j, p.act_dtype,
              static_cast<double>(p.scale) * acc);
      }
    }
  }

  // present_state: S after the last token (the initial state when T = 0).
  for (int64_t i = 0; i < dk; ++i)
    for (int64_t j = 0; j < dv; ++j)
      store(p.present, b * p.pres_sb + h * p.pres_sh + i * p.pres_sk + j, p.present_dtype,
            S[i * dv + j]);
}

}  // namespace

Status linear_attention(const LinearAttentionParams& p, const Exec& e) {
  const int64_t items = p.B * p.Hkv;
  auto body = [&](int64_t item, int) {
    run_head(p, item / p.Hkv, static_cast<int32_t>(item % p.Hkv));
  };
  // (b, h) pairs are independent, so spreading them over the pool changes nothing but time.
  if (e.pool != nullptr) {
    e.pool->parallel_for(items, body);
  } else {
    for (int64_t i = 0; i < items; ++i) body(i, 0);
  }
  return Status();
}

}  // namespace linattn::detail::reference
