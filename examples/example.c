/* One CausalConvWithState call (silu, width 4, carried state) on the CPU through the C ABI. */
#include <stdio.h>

#include "linattn/linattn.h"

int main(void) {
  enum { B = 1, C = 4, L = 5, K = 4 };
  float x[B * C * L], w[C * K], y[B * C * L], state[B * C * (K - 1)];
  for (int i = 0; i < B * C * L; ++i) x[i] = 0.1f * (float)i;
  for (int i = 0; i < C * K; ++i) w[i] = 0.25f;

  linattn_context_options opt = linattn_context_default_options();
  opt.backend = LINATTN_BACKEND_CPU;
  linattn_context* ctx = NULL;
  if (linattn_context_create(&opt, &ctx) != LINATTN_OK) {
    fprintf(stderr, "%s\n", linattn_last_error());
    return 1;
  }
  const int64_t xs[3] = {B, C, L}, ws[3] = {C, 1, K}, ss[3] = {B, C, K - 1};
  linattn_causal_conv_args a = linattn_causal_conv_args_default(); /* all optional parts off */
  a.activation = LINATTN_ACTIVATION_SILU;
  a.input = linattn_tensor_contiguous(x, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.weight = linattn_tensor_contiguous(w, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ws);
  a.output = linattn_tensor_contiguous(y, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.present_state = linattn_tensor_contiguous(state, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ss);

  linattn_status s = linattn_causal_conv(ctx, &a);
  if (s != LINATTN_OK) fprintf(stderr, "%s: %s\n", linattn_status_name(s), linattn_last_error());
  else printf("y[0][0][4] = %.6f\n", y[4]);
  linattn_context_destroy(ctx);
  return s == LINATTN_OK ? 0 : 1;
}
