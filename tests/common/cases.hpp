// Case descriptions shared by the CPU and GPU suites, and the deterministic random inputs each
// case expands to. Inputs are realistic: q and k L2-normalised per head for the delta rules (and
// of unit scale otherwise), v ~ N(0, 1), decay = logsigmoid(N(0,1) + 3) <= 0 (slow forgetting, as
// trained models have), beta = sigmoid(N(0, 1)) in (0, 1), a small random past state. Values
// are rounded to the case's dtypes when written, so every backend and the oracle read the very
// same numbers.
#pragma once

#include <cstdint>
#include <ostream>
#include <random>
#include <string>

#include "common/host_tensor.hpp"
#include "linattn/linattn.h"

namespace linattn::test {

enum class DecayKind { kNone, kPerHead, kPerKeyDim };
enum class BetaKind { kNone, kPerHead, kShared };

const char* decay_kind_name(DecayKind k);
const char* beta_kind_name(BetaKind k);
const char* rule_short_name(linattn_update_rule r);

struct LinearAttentionCase {
  int64_t B = 1, T = 1;
  int32_t Hq = 1, Hk = 1, Hkv = 1;  // query, key and value (kv) heads
  int32_t dk = 16, dv = 16;
  linattn_update_rule rule = LINATTN_RULE_GATED_DELTA;
  DecayKind decay = DecayKind::kPerHead;
  BetaKind beta = BetaKind::kPerHead;
  linattn_dtype act_dtype = LINATTN_FLOAT32;
  linattn_dtype state_dtype = LINATTN_FLOAT32;  // past_state and present_state
  bool strided = false;   // every view sliced out of a wider buffer
  bool has_past = true;
  float scale = 0.f;      // 0 = 1/sqrt(d_k)
  uint64_t seed = 1;

  int32_t Hout() const { return Hq > Hkv ? Hq : Hkv; }
  bool rule_gated() const {
    return rule == LINATTN_RULE_GATED || rule == LINATTN_RULE_GATED_DELTA;
  }
  bool rule_delta() const {
    return rule == LINATTN_RULE_DELTA || rule == LINATTN_RULE_GATED_DELTA;
  }
  // A rule that needs decay or beta without it is an invalid call, not a numerical case.
  bool valid() const {
    return !(rule_gated() && decay == DecayKind::kNone) &&
           !(rule_delta() && beta == BetaKind::kNone);
  }
  std::string name() const;  // a GoogleTest-safe identifier
};

struct CausalConvCase {
  int64_t B = 1, C = 8, L = 1;
  int32_t K = 4;
  bool bias = true;
  bool has_past = true;
  bool silu = true;
  bool channels_last = false;
  linattn_dtype act_dtype = LINATTN_FLOAT32;
  linattn_dtype state_dtype = LINATTN_FLOAT32;
  bool strided = false;
  uint64_t seed = 1;
  std::string name() const;
};

// GoogleTest prints parameters with these.
void PrintTo(const LinearAttentionCase& c, std::ostream* os);
void PrintTo(const CausalConvCase& c, std::ostream* os);

// Inputs of one case; absent optional inputs have rank 0.
struct LinearAttentionInputs {
  HostTensor query, key, value, past_state, decay, beta;
};
struct LinearAttentionOutputs {
  HostTensor output, present_state;
};
struct CausalConvInputs {
  HostTensor input, weight, bias, past_state;
};
struct CausalConvOutputs {
  HostTensor output, present_state;
};

LinearAttentionInputs make_inputs(const LinearAttentionCase& c);
CausalConvInputs make_inputs(const CausalConvCase& c);

// Outputs in the given dtypes, poisoned with NaN (padding included).
LinearAttentionOutputs make_outputs(const LinearAttentionCase& c, linattn_dtype act,
                                    linattn_dtype state, bool strided);
CausalConvOutputs make_outputs(const CausalConvCase& c, linattn_dtype act, linattn_dtype state,
                               bool strided);

// Every tensor converted to float64 and packed: what the oracle reads.
LinearAttentionInputs to_float64(const LinearAttentionInputs& in);
CausalConvInputs to_float64(const CausalConvInputs& in);

// Argument structs over host views (device mirrors are substituted by the runner).
linattn_linear_attention_args make_args(const LinearAttentionCase& c,
                                        const LinearAttentionInputs& in,
                                        const LinearAttentionOutputs& out);
linattn_causal_conv_args make_args(const CausalConvCase& c, const CausalConvInputs& in,
                                   const CausalConvOutputs& out);

}  // namespace linattn::test
