// The float64 oracle of CausalConvWithState, straight from the formula of SEMANTICS.md:
// P = concat(past_state or zeros, input) along time, y[l] = act(bias + sum_j w[j] P[l+j]),
// present_state = the last k-1 columns of P.
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/backend.hpp"
#include "core/thread_pool.hpp"
#include "reference/scalar_io.hpp"

namespace linattn::detail::reference {
namespace {

void run_channel(const CausalConvParams& p, int64_t b, int64_t c) {
  const int64_t K = p.K, L = p.L, S = K - 1;

  // 1. P = concat(past or zeros, input): length k-1+L. Built before any write, so
  //    present_state may alias past_state.
  std::vector<double> P(static_cast<size_t>(S + L), 0.0);
  if (p.past != nullptr)
    for (int64_t j = 0; j < S; ++j)
      P[j] = load(p.past, b * p.past_sb + c * p.past_sc + j, p.past_dtype);
  for (int64_t l = 0; l < L; ++l)
    P[S + l] = load(p.x, b * p.x_sb + c * p.x_sc + l * p.x_sl, p.act_dtype);

  // 2. y[l] = act(bias + sum_j w[j] P[l+j]).
  const double bias = p.bias != nullptr ? load(p.bias, c * p.bias_sc, p.act_dtype) : 0.0;
  for (int64_t l = 0; l < L; ++l) {
    double acc = bias;
    for (int64_t j = 0; j < K; ++j)
      acc += load(p.w, c * p.w_sc + j * p.w_sk, p.act_dtype) * P[l + j];
    if (p.silu) acc = acc / (1.0 + std::exp(-acc));
    store(p.y, b * p.y_sb + c * p.y_sc + l * p.y_sl, p.act_dtype, acc);
  }

  // 3. present_state = P[L : L+k-1] (still the tail of past when L < k-1).
  for (int64_t j = 0; j < S; ++j)
    store(p.present, b * p.pres_sb + c * p.pres_sc + j, p.present_dtype, P[L + j]);
}

}  // namespace

Status causal_conv(const CausalConvParams& p, const Exec& e) {
  const int64_t items = p.B * p.C;
  auto body = [&](int64_t item, int) { run_channel(p, item / p.C, item % p.C); };
  if (e.pool != nullptr) {
    e.pool->parallel_for(items, body);
  } else {
    for (int64_t i = 0; i < items; ++i) body(i, 0);
  }
  return Status();
}

}  // namespace linattn::detail::reference
