// Argument checking: the one place where user input is validated (SEMANTICS.md, every rule).
// A check either returns OK and fills a params struct completely, or returns an error whose
// message names the input and gives the expected and the actual shape. Checks read only the
// views (pointers, shapes, strides), never the memory behind them, so they are equally valid
// for host and device tensors and cost nothing on the device.
#pragma once

#include "core/params.hpp"
#include "core/status.hpp"
#include "linattn/linattn.h"

namespace linattn::detail {

// On success *out holds the device-ready parameters for `backend`; on failure *out is left
// unspecified and nothing else is touched.
Status check_linear_attention(const linattn_linear_attention_args& args, linattn_backend backend,
                              LinearAttentionParams* out);
Status check_causal_conv(const linattn_causal_conv_args& args, linattn_backend backend,
                         CausalConvParams* out);

// True when any serving field is set (a non-absent tensor or a nonzero scalar): the call then
// goes through the serving adapter (src/core/serving.hpp) instead of one dense kernel call.
bool serving_requested(const linattn_serving_args& s);

// The shape the state tensors take: the dense operator's one row per batch entry, or a serving
// form (serving_check.cpp decides which, from the serving fields).
struct StateForm {
  static constexpr int64_t kRowsB = -1;    // shape[0] = B (the dense operator)
  static constexpr int64_t kRowsAny = -2;  // a pool: any number of slots
  int64_t rows = kRowsB;    // else the exact number of rows (one per sequence)
  bool value_major = false; // blocks are (d_v, d_k) instead of (d_k, d_v)
  bool packed = false;      // token tensors pack N sequences along T: their B must be 1
  const char* form = "";    // named in messages, e.g. " (state pool)"
};

// The dense checks under a serving state form: every rule of the dense operator except the
// state shapes, which follow `form`. check_linear_attention / check_causal_conv are these with
// the default form, and reject a call whose serving fields are set.
Status check_linear_attention_form(const linattn_linear_attention_args& args,
                                   linattn_backend backend, const StateForm& form,
                                   LinearAttentionParams* out);
Status check_causal_conv_form(const linattn_causal_conv_args& args, linattn_backend backend,
                              const StateForm& form, CausalConvParams* out);

}  // namespace linattn::detail
