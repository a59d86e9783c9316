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

}  // namespace linattn::detail
