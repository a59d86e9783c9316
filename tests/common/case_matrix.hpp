// The LinearAttention case matrix shared by the backend suites (CPU and CUDA): update rule x
// head mapping x decay kind x beta kind x activation dtype x state dtype x length x strided
// views, plus past/no past, batch, head sizes and an explicit scale. Per rule, two families
// keep the run short while every value of every axis meets every rule:
//   A: head mapping x decay x beta x strided, full product (valid combinations only);
//   B: activation dtype x state dtype x length, full product;
// the remaining axes (head sizes, past, batch, scale) cycle along each family.
#pragma once

#include <cstdint>
#include <vector>

#include "common/cases.hpp"

namespace linattn::test {

struct HeadMapping {
  int32_t Hq, Hk, Hkv;
};
struct HeadDims {
  int32_t dk, dv;
};

// equal heads, standard GQA (H_q = 2 H_kv), inverse GQA (H_kv = 2 H_q, Qwen3.5-like),
// key sharing (n_k < H_kv).
inline constexpr HeadMapping kMatrixMappings[] = {{2, 2, 2}, {4, 2, 2}, {2, 2, 4}, {4, 1, 4}};
inline constexpr DecayKind kMatrixDecays[] = {DecayKind::kNone, DecayKind::kPerHead,
                                              DecayKind::kPerKeyDim};
inline constexpr BetaKind kMatrixBetas[] = {BetaKind::kNone, BetaKind::kPerHead, BetaKind::kShared};
inline constexpr linattn_dtype kMatrixDtypes[] = {LINATTN_FLOAT32, LINATTN_FLOAT16,
                                                  LINATTN_BFLOAT16};
inline constexpr linattn_update_rule kMatrixRules[] = {LINATTN_RULE_LINEAR, LINATTN_RULE_GATED,
                                                       LINATTN_RULE_DELTA,
                                                       LINATTN_RULE_GATED_DELTA};

// The axes a suite chooses: the lengths and head sizes it needs to reach its kernels, and the
// first seed (suites keep disjoint seeds).
struct MatrixAxes {
  std::vector<int64_t> lengths;
  std::vector<HeadDims> dims;
  uint64_t first_seed = 1;
};

std::vector<LinearAttentionCase> build_attention_matrix(const MatrixAxes& axes);

}  // namespace linattn::test
