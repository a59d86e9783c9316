// Device-ready parameters: what validation (src/core/check.cpp) hands to a backend. Plain data,
// includable from CUDA. All strides are in elements. Kernels trust these values: every rule of
// SEMANTICS.md has been checked before a params struct exists.
#pragma once

#include <cstdint>

#include "linattn/linattn.h"

#if defined(__CUDACC__)
#define LINATTN_HD __host__ __device__ __forceinline__
#else
#define LINATTN_HD inline
#endif

namespace linattn::detail {

struct LinearAttentionParams {
  // Sizes. Hk = n_k (key heads); Hout = max(Hq, Hkv) output heads.
  int64_t B = 0, T = 0;
  int32_t Hq = 0, Hk = 0, Hkv = 0, Hout = 0, dk = 0, dv = 0;

  linattn_update_rule rule = LINATTN_RULE_GATED_DELTA;
  bool gated = false;  // rule multiplies S by exp(g)
  bool delta = false;  // rule uses the delta update with beta
  float scale = 0.f;   // resolved: never 0 here
  int32_t chunk_size = 64;

  bool decay_per_key_dim = false;  // decay is (B, T, Hkv*dk) rather than (B, T, Hkv)
  bool beta_shared = false;        // beta is (B, T, 1)

  linattn_dtype act_dtype = LINATTN_FLOAT32;      // q, k, v, decay, beta, output
  linattn_dtype past_dtype = LINATTN_FLOAT32;     // meaningful only when past != nullptr
  linattn_dtype present_dtype = LINATTN_FLOAT32;

  // Token (b, t), head h: element (b * sb + t * st + h * D + i) of the packed (B, T, H*D) view.
  const void* q = nullptr;  int64_t q_sb = 0, q_st = 0;
  const void* k = nullptr;  int64_t k_sb = 0, k_st = 0;
  const void* v = nullptr;  int64_t v_sb = 0, v_st = 0;
  // nullptr when the rule does not use it (a given-but-unused input is validated, then dropped).
  // decay element: b*g_sb + t*g_st + h (per head) or + h*dk + i (per key dim).
  const void* decay = nullptr;  int64_t g_sb = 0, g_st = 0;
  // beta element: b*beta_sb + t*beta_st + (beta_shared ? 0 : h).
  const void* beta = nullptr;   int64_t beta_sb = 0, beta_st = 0;
  void* out = nullptr;      int64_t o_sb = 0, o_st = 0;

  // State (b, h) row i (key dim), column j (value dim): b*sb + h*sh + i*sk + j.
  const void* past = nullptr;  int64_t past_sb = 0, past_sh = 0, past_sk = 0;  // nullptr = zeros
  void* present = nullptr;     int64_t pres_sb = 0, pres_sh = 0, pres_sk = 0;
  bool in_place = false;  // present and past are the same memory with the same strides

  // Head mapping (SEMANTICS.md "Head mapping"). Every kv head h is read by `q_per_kv()` query
  // heads; the j-th of them is query_head(h, j) and writes output head output_head(h, j).
  LINATTN_HD int32_t key_head(int32_t h) const { return h / (Hkv / Hk); }
  LINATTN_HD int32_t q_per_kv() const { return Hq >= Hkv ? Hq / Hkv : 1; }
  LINATTN_HD int32_t query_head(int32_t h, int32_t j) const {
    return Hq >= Hkv ? h * (Hq / Hkv) + j : static_cast<int32_t>((int64_t)h * Hq / Hkv);
  }
  LINATTN_HD int32_t output_head(int32_t h, int32_t j) const {
    return Hq >= Hkv ? h * (Hq / Hkv) + j : h;
  }
};

struct CausalConvParams {
  // Logical layout (B, C, L) whatever the memory layout; K = kernel width (>= 1).
  int64_t B = 0, C = 0, L = 0;
  int32_t K = 1;
  bool silu = false;
  bool channels_last = false;  // informative: the strides below already encode the layout

  linattn_dtype act_dtype = LINATTN_FLOAT32;   // input, weight, bias, output
  linattn_dtype past_dtype = LINATTN_FLOAT32;  // meaningful only when past != nullptr
  linattn_dtype present_dtype = LINATTN_FLOAT32;

  // input/output element (b, c, l): b*sb + c*sc + l*sl.
  const void* x = nullptr;  int64_t x_sb = 0, x_sc = 0, x_sl = 0;
  void* y = nullptr;        int64_t y_sb = 0, y_sc = 0, y_sl = 0;
  // weight element (c, j): c*w_sc + j*w_sk (the middle dim of (C, 1, K) has size 1).
  const void* w = nullptr;  int64_t w_sc = 0, w_sk = 0;
  const void* bias = nullptr;  int64_t bias_sc = 0;  // nullptr = no bias
  // state element (b, c, j), j < K-1: b*sb + c*sc + j (innermost stride 1).
  const void* past = nullptr;  int64_t past_sb = 0, past_sc = 0;  // nullptr = zeros
  void* present = nullptr;     int64_t pres_sb = 0, pres_sc = 0;
  bool in_place = false;
};

}  // namespace linattn::detail
