// Fused recurrent LinearAttention, float32 math (SEMANTICS.md "Recurrence").
//
// State layout in the scratch buffer: S is d_k x d_v row-major, row i = key dim i, so every inner
// loop runs over d_v contiguous floats and auto-vectorises. Per token the state is swept twice
// for the delta rules and once for the linear ones:
//   sweep 1 (delta):  S_i <- e_i S_i (step 1) and r += k_i S_i (step 2, r = S^T k)
//   then              u = beta (v - r)
//   sweep 2:          S_i <- S_i + k_i u (or e_i S_i + k_i v, steps 1 and 3 for linear rules)
//                     and o_g += q_g[i] S_i for every query head g of this kv head (step 4)
#include "cpu/recurrent.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

#include "core/thread_pool.hpp"
#include "cpu/float_rows.hpp"

namespace linattn::detail::cpu {
namespace {

// Per-thread buffers, grown on demand and reused across calls so decode steps allocate nothing.
struct Scratch {
  std::vector<float> state, k, v, q, e, r, u, o;
  void reserve(int64_t dk, int64_t dv, int64_t G) {
    auto grow = [](std::vector<float>& b, int64_t n) {
      if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
    };
    grow(state, dk * dv);
    grow(k, dk);
    grow(v, dv);
    grow(q, G * dk);
    grow(e, dk);
    grow(r, dv);
    grow(u, dv);
    grow(o, G * dv);
  }
};

Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

// S_i <- e S_i, r += k_i S_i   (r must start at zero)
inline void decay_and_project(float* __restrict S, const float* __restrict e,
                              const float* __restrict k, float* __restrict r, int64_t dk,
                              int64_t dv, bool gated) {
  for (int64_t i = 0; i < dk; ++i) {
    float* __restrict Si = S + i * dv;
    const float ki = k[i];
    if (gated) {
      const float ei = e[i];
      for (int64_t j = 0; j < dv; ++j) {
        const float s = Si[j] * ei;
        Si[j] = s;
        r[j] += ki * s;
      }
    } else {
      for (int64_t j = 0; j < dv; ++j) r[j] += ki * Si[j];
    }
  }
}

// S_i <- a_i S_i + k_i w (a_i = 1 when `scale_rows` is false), then o_g += q_g[i] S_i.
inline void update_and_read(float* __restrict S, const float* __restrict a, bool scale_rows,
                            const float* __restrict k, const float* __restrict w,
                            const float* __restrict q, float* __restrict o, int64_t dk,
                            int64_t dv, int32_t G) {
  for (int64_t i = 0; i < dk; ++i) {
    float* __restrict Si = S + i * dv;
    const float ki = k[i];
    if (scale_rows) {
      const float ai = a[i];
      for (int64_t j = 0; j < dv; ++j) Si[j] = ai * Si[j] + ki * w[j];
    } else {
      for (int64_t j = 0; j < dv; ++j) Si[j] += ki * w[j];
    }
    for (int32_t g = 0; g < G; ++g) {
      const float qi = q[g * dk + i];
      float* __restrict og = o + g * dv;
      for (int64_t j = 0; j < dv; ++j) og[j] += qi * Si[j];
    }
  }
}

void run_head(const LinearAttentionParams& p, int64_t b, int32_t h, Scratch& sc) {
  const int64_t dk = p.dk, dv = p.dv;
  const int32_t G = p.q_per_kv();
  const int32_t hk = p.key_head(h);
  const linattn_dtype at = p.act_dtype;
  float* __restrict S = sc.state.data();

  // Load the whole (b, h) state before any store: present_state may alias past_state.
  if (p.past != nullptr) {
    for (int64_t i = 0; i < dk; ++i)
      load_row(p.past, b * p.past_sb + h * p.past_sh + i * p.past_sk, dv, p.past_dtype,
               S + i * dv);
  } else {
    for (int64_t n = 0; n < dk * dv; ++n) S[n] = 0.f;
  }

  float* __restrict e = sc.e.data();
  float* __restrict r = sc.r.data();
  float* __restrict u = sc.u.data();
  float* __restrict o = sc.o.data();
  float* __restrict qbuf = sc.q.data();

  for (int64_t t = 0; t < p.T; ++t) {
    const float* k = row_as_float(p.k, b * p.k_sb + t * p.k_st + hk * dk, dk, at, sc.k.data());
    const float* v = row_as_float(p.v, b * p.v_sb + t * p.v_st + h * dv, dv, at, sc.v.data());
    for (int32_t g = 0; g < G; ++g)
      load_row(p.q, b * p.q_sb + t * p.q_st + p.query_head(h, g) * dk, dk, at, qbuf + g * dk);

    // Step 1 factors: e_i = exp(g_t) (per head, broadcast to every row) or exp(g_t[i]).
    if (p.gated) {
      const int64_t g_off = b * p.g_sb + t * p.g_st;
      if (p.decay_per_key_dim) {
        load_row(p.decay, g_off + h * dk, dk, at, e);
        for (int64_t i = 0; i < dk; ++i) e[i] = std::exp(e[i]);
      } else {
        const float eh = std::exp(load_as_float(p.decay, g_off + h, at));
        for (int64_t i = 0; i < dk; ++i) e[i] = eh;
      }
    }

    for (int64_t n = 0; n < G * dv; ++n) o[n] = 0.f;
    if (p.delta) {
      // Steps 1-2: decay, r = S^T k on the decayed state, u = beta (v - r), S += k u^T.
      const float beta =
          load_as_float(p.beta, b * p.beta_sb + t * p.beta_st + (p.beta_shared ? 0 : h), at);
      for (int64_t j = 0; j < dv; ++j) r[j] = 0.f;
      decay_and_project(S, e, k, r, dk, dv, p.gated);
      for (int64_t j = 0; j < dv; ++j) u[j] = beta * (v[j] - r[j]);
      update_and_read(S, e, false, k, u, qbuf, o, dk, dv, G);
    } else {
      // Steps 1 and 3: S <- e S + k v^T.
      update_and_read(S, e, p.gated, k, v, qbuf, o, dk, dv, G);
    }

    // Step 4: o = scale * S^T q, written to each output head reading this state.
    const float scale = p.scale;
    for (int32_t g = 0; g < G; ++g) {
      float* __restrict og = o + g * dv;
      for (int64_t j = 0; j < dv; ++j) og[j] *= scale;
      store_row(p.out, b * p.o_sb + t * p.o_st + p.output_head(h, g) * dv, dv, at, og);
    }
  }

  for (int64_t i = 0; i < dk; ++i)
    store_row(p.present, b * p.pres_sb + h * p.pres_sh + i * p.pres_sk, dv, p.present_dtype,
              S + i * dv);
}

}  // namespace

Status linear_attention_recurrent(const LinearAttentionParams& p, const Exec& e) {
  const int64_t items = p.B * p.Hkv;
  e.pool->parallel_for(items, [&](int64_t item, int) {
    Scratch& sc = thread_scratch();
    sc.reserve(p.dk, p.dv, p.q_per_kv());
    run_head(p, item / p.Hkv, static_cast<int32_t>(item % p.Hkv), sc);
  });
  return Status();
}

}  // namespace linattn::detail::cpu
