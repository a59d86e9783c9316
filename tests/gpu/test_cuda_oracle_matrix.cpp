// The CUDA backend against the float64 oracle, through the public API with device tensors, over
// the same axes as the CPU matrix: update rule x head mapping x decay kind x beta kind x
// activation dtype x state dtype x length x strided views, plus past/no past, batch, odd head
// sizes (5 x 7) and the specialised ones (64, 128, which take the vectorised kernel and, for
// long calls, the chunked prefill). Outputs are NaN-poisoned before each call.
#include <gtest/gtest.h>

#include <iterator>
#include <string>
#include <vector>

#include "common/case_matrix.hpp"
#include "common/cases.hpp"
#include "common/oracle_runner.hpp"
#include "cuda/linear_attention.hpp"
#include "gpu/cuda_support.hpp"

namespace linattn::test {
namespace {

const int64_t kLengths[] = {0, 1, 2, 63, 64, 65, 129};
const HeadDims kDims[] = {{16, 16}, {5, 7}, {64, 64}, {16, 32}, {128, 128}, {32, 16}, {128, 64}};

std::vector<LinearAttentionCase> build_matrix() {
  return build_attention_matrix({{std::begin(kLengths), std::end(kLengths)},
                                 {std::begin(kDims), std::end(kDims)}, 1000});
}

class CudaOracleMatrix : public ::testing::TestWithParam<LinearAttentionCase> {};

TEST_P(CudaOracleMatrix, MatchesOracle) {
  LINATTN_SKIP_WITHOUT_GPU();
  const LinearAttentionCase& c = GetParam();
  Tolerance tol = default_tolerance(c);
  // Long calls may take the chunked prefill, whose tensor-core products round their operands
  // (the state among them) to the activation type: there the state's error is bounded by the
  // activation dtype's tolerance rather than the state dtype's.
  if (c.T >= detail::cuda::kChunkedPrefillMinTokens && tol.state < tol.output) tol.state = tol.output;
  CudaPlacement placement;
  EXPECT_TRUE(passed(run_case(c, cuda_context(), &placement, &tol)));
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaOracleMatrix, ::testing::ValuesIn(build_matrix()),
                         [](const ::testing::TestParamInfo<LinearAttentionCase>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

// Grids large enough for the 32-column slabs (CPT = 8) that large decode batches take: the
// matrix above is too small to reach them.
std::vector<LinearAttentionCase> build_wide_slab_cases() {
  std::vector<LinearAttentionCase> cases;
  auto make = [&](linattn_update_rule rule, int64_t B, int64_t T, int32_t Hq, int32_t Hk,
                  int32_t Hkv, int32_t d, DecayKind decay, linattn_dtype act, linattn_dtype state,
                  bool strided, bool has_past) {
    LinearAttentionCase c;
    c.rule = rule;
    c.B = B;
    c.T = T;
    c.Hq = Hq;
    c.Hk = Hk;
    c.Hkv = Hkv;
    c.dk = c.dv = d;
    c.decay = decay;
    c.beta = BetaKind::kPerHead;
    c.act_dtype = act;
    c.state_dtype = state;
    c.strided = strided;
    c.has_past = has_past;
    c.seed = 9000 + cases.size();
    cases.push_back(c);
  };
  make(LINATTN_RULE_GATED_DELTA, 16, 1, 16, 16, 32, 128, DecayKind::kPerHead, LINATTN_BFLOAT16,
       LINATTN_FLOAT32, false, true);
  make(LINATTN_RULE_GATED_DELTA, 16, 2, 16, 16, 32, 128, DecayKind::kPerHead, LINATTN_BFLOAT16,
       LINATTN_BFLOAT16, true, true);
  make(LINATTN_RULE_GATED_DELTA, 32, 1, 64, 16, 32, 64, DecayKind::kPerKeyDim, LINATTN_FLOAT32,
       LINATTN_FLOAT16, false, true);
  make(LINATTN_RULE_LINEAR, 16, 3, 32, 32, 32, 128, DecayKind::kNone, LINATTN_FLOAT16,
       LINATTN_FLOAT32, false, false);
  // Decode (T = 1, one query head per kv head): 16-bit states, no past state and d_k = 64 on
  // 32-column slabs, then the persistent decode kernel (16-column slabs) with more slabs than
  // resident blocks (2048 slabs, several per block) with float32 state; the last case is strided
  // with Hq < Hkv.
  make(LINATTN_RULE_GATED_DELTA, 16, 1, 16, 16, 32, 128, DecayKind::kPerHead, LINATTN_BFLOAT16,
       LINATTN_BFLOAT16, false, true);
  make(LINATTN_RULE_GATED_DELTA, 32, 1, 32, 16, 32, 64, DecayKind::kPerKeyDim, LINATTN_FLOAT16,
       LINATTN_FLOAT16, true, true);
  make(LINATTN_RULE_LINEAR, 16, 1, 16, 16, 32, 128, DecayKind::kNone, LINATTN_FLOAT32,
       LINATTN_BFLOAT16, false, false);
  make(LINATTN_RULE_GATED, 8, 1, 16, 16, 32, 128, DecayKind::kPerHead, LINATTN_BFLOAT16,
       LINATTN_FLOAT32, false, true);
  make(LINATTN_RULE_DELTA, 8, 1, 8, 8, 32, 128, DecayKind::kNone, LINATTN_FLOAT16,
       LINATTN_FLOAT32, true, true);
  for (LinearAttentionCase& c : cases) {
    if (c.rule == LINATTN_RULE_LINEAR || c.rule == LINATTN_RULE_GATED) c.beta = BetaKind::kNone;
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(CudaWideSlab, CudaOracleMatrix, ::testing::ValuesIn(build_wide_slab_cases()),
                         [](const ::testing::TestParamInfo<LinearAttentionCase>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

// Conv: layout x width x length x dtypes x bias/past/activation/strides.
std::vector<CausalConvCase> build_conv_matrix() {
  std::vector<CausalConvCase> cases;
  uint64_t seed = 5000;
  int n = 0;
  for (bool channels_last : {false, true})
    for (int32_t K : {1, 2, 3, 4, 5})
      for (int64_t L : {0, 1, 2, 3, 16, 33, 100}) {
        CausalConvCase c;
        c.channels_last = channels_last;
        c.K = K;
        c.L = L;
        c.B = 1 + n % 3;
        c.C = (n % 4 == 0) ? 40 : 13;
        c.bias = n % 3 != 1;
        c.has_past = n % 5 != 2;
        c.silu = n % 2 == 0;
        c.strided = n % 4 == 3;
        c.act_dtype = kMatrixDtypes[n % 3];
        c.state_dtype = kMatrixDtypes[(n / 3) % 3];
        c.seed = seed++;
        ++n;
        cases.push_back(c);
      }
  return cases;
}

class CudaConvMatrix : public ::testing::TestWithParam<CausalConvCase> {};

TEST_P(CudaConvMatrix, MatchesOracle) {
  LINATTN_SKIP_WITHOUT_GPU();
  CudaPlacement placement;
  EXPECT_TRUE(passed(run_case(GetParam(), cuda_context(), &placement)));
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaConvMatrix, ::testing::ValuesIn(build_conv_matrix()),
                         [](const ::testing::TestParamInfo<CausalConvCase>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

// Kernel-path cases for conv: update calls (L = 1) with 8-aligned channel counts and a batch
// that is not a multiple of the rows a thread takes, update calls and channels-last prefill
// over several channel and time tiles of the bulk-copy kernels, and channels-first prefill
// lengths that
// are multiples of the 16-byte vector, spanning several warp segments with a partial last one.
std::vector<CausalConvCase> build_conv_path_cases() {
  std::vector<CausalConvCase> cases;
  uint64_t seed = 7000;
  int n = 0;
  auto add = [&](bool channels_last, int32_t K, int64_t L, int64_t B, int64_t C, linattn_dtype dt) {
    CausalConvCase c;
    c.channels_last = channels_last;
    c.K = K;
    c.L = L;
    c.B = B;
    c.C = C;
    c.bias = n % 4 != 1;
    c.has_past = n % 5 != 2;
    c.silu = n % 2 == 0;
    c.act_dtype = dt;
    c.state_dtype = n % 3 == 0 ? kMatrixDtypes[(n / 3) % 3] : dt;
    c.seed = seed++;
    ++n;
    cases.push_back(c);
  };
  for (int64_t L : {1, 104, 2120})
    for (int32_t K : {2, 3, 4})
      for (linattn_dtype dt : kMatrixDtypes)
        add(L == 1 && n % 2 == 1, K, L, L == 1 ? 5 : 2, L == 1 ? 24 : 8, dt);
  // Channels-last prefill (L > 16, 8-aligned channels): lengths that end in a partial run of
  // time steps, channel groups that do not fill a warp.
  for (int64_t L : {37, 104})
    for (int32_t K : {2, 3, 4})
      for (linattn_dtype dt : kMatrixDtypes) add(true, K, L, 2, 24, dt);
  // Channels-last prefill on the bulk-copy kernel: channel tiles with a partial last one, time
  // tiles with a partial last one.
  for (int32_t K : {2, 3, 4})
    for (linattn_dtype dt : {LINATTN_BFLOAT16, LINATTN_FLOAT16}) add(true, K, 70, 2, 520, dt);
  // Update calls on the bulk-copy kernel (16-bit activations, states of the same dtype): channel
  // tiles with a partial last one, and whole tiles.
  for (int64_t C : {2072, 4096})
    for (int32_t K : {2, 3, 4})
      for (linattn_dtype dt : {LINATTN_BFLOAT16, LINATTN_FLOAT16}) {
        add(false, K, 1, 2, C, dt);
        cases.back().state_dtype = dt;
      }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(CudaConvPaths, CudaConvMatrix, ::testing::ValuesIn(build_conv_path_cases()),
                         [](const ::testing::TestParamInfo<CausalConvCase>& info) {
                           return std::to_string(info.index) + "_" + info.param.name();
                         });

}  // namespace
}  // namespace linattn::test
