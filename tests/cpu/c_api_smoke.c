/* The public header compiles as strict C99 (built with -std=c99 -pedantic -Werror) and the C ABI
 * works from C: contexts, both operators on the CPU backend checked against values computed
 * here, an error with its message, and the string helpers. Exits non-zero on any failure. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "linattn/linattn.h"

static int failures = 0;

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) {                                                      \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                       \
    }                                                                   \
  } while (0)

#define CHECK_OK(call)                                                          \
  do {                                                                          \
    linattn_status s_ = (call);                                                 \
    if (s_ != LINATTN_OK) {                                                     \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, linattn_status_name(s_), \
              linattn_last_error());                                            \
      ++failures;                                                               \
    }                                                                           \
  } while (0)

static int close_to(double a, double b) { return fabs(a - b) <= 1e-5 * (1.0 + fabs(b)); }

/* Linear rule, one head, d_k = d_v = 2, two tokens, no past state: S_t = sum k v^T, o = s S^T q. */
static void linear_attention_case(linattn_context* ctx) {
  float q[4] = {1.0f, 0.0f, 0.5f, 0.5f};
  float k[4] = {1.0f, 2.0f, -1.0f, 1.0f};
  float v[4] = {3.0f, 4.0f, 1.0f, -2.0f};
  float out[4], state[4];
  const int64_t tok[3] = {1, 2, 2}, st[4] = {1, 1, 2, 2};
  double S[2][2] = {{0, 0}, {0, 0}};
  int t, i, j;
  linattn_linear_attention_args a;
  memset(&a, 0, sizeof(a));
  a.q_num_heads = 1;
  a.kv_num_heads = 1;
  a.update_rule = LINATTN_RULE_LINEAR;
  a.scale = 0.5f;
  a.query = linattn_tensor_contiguous(q, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, tok);
  a.key = linattn_tensor_contiguous(k, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, tok);
  a.value = linattn_tensor_contiguous(v, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, tok);
  a.past_state = linattn_tensor_absent();
  a.decay = linattn_tensor_absent();
  a.beta = linattn_tensor_absent();
  a.output = linattn_tensor_contiguous(out, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, tok);
  a.present_state = linattn_tensor_contiguous(state, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 4, st);

  CHECK_OK(linattn_linear_attention_supports(ctx, &a));
  CHECK_OK(linattn_linear_attention(ctx, &a));
  for (t = 0; t < 2; ++t) {
    for (i = 0; i < 2; ++i)
      for (j = 0; j < 2; ++j) S[i][j] += (double)k[t * 2 + i] * v[t * 2 + j];
    for (j = 0; j < 2; ++j) {
      const double o = 0.5 * (S[0][j] * q[t * 2] + S[1][j] * q[t * 2 + 1]);
      CHECK(close_to(out[t * 2 + j], o));
    }
  }
  for (i = 0; i < 2; ++i)
    for (j = 0; j < 2; ++j) CHECK(close_to(state[i * 2 + j], S[i][j]));

  /* A broken call: key width 3 is not a multiple of d_k = 2; nothing is written. */
  out[0] = 12345.0f;
  a.key.shape[2] = 3;
  CHECK(linattn_linear_attention(ctx, &a) == LINATTN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(linattn_last_error(), "key") != NULL);
  CHECK(strstr(linattn_last_error(), "(1, 2, 3)") != NULL);
  CHECK(out[0] == 12345.0f);
}

/* Width-2 conv, one channel, no bias: y[l] = w0 * P[l] + w1 * P[l+1], P = [past, x]. */
static void causal_conv_case(linattn_context* ctx) {
  float x[3] = {1.0f, 2.0f, 3.0f};
  float w[2] = {0.5f, -1.0f};
  float state[1] = {4.0f};
  float y[3];
  const int64_t xs[3] = {1, 1, 3}, ws[3] = {1, 1, 2}, ss[3] = {1, 1, 1};
  linattn_activation act = LINATTN_ACTIVATION_SILU;
  linattn_causal_conv_args a;
  memset(&a, 0, sizeof(a));
  CHECK_OK(linattn_activation_from_string("none", &act));
  a.activation = act;
  a.input = linattn_tensor_contiguous(x, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.weight = linattn_tensor_contiguous(w, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ws);
  a.bias = linattn_tensor_absent();
  a.past_state = linattn_tensor_contiguous(state, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ss);
  a.output = linattn_tensor_contiguous(y, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.present_state = a.past_state; /* in place */
  CHECK_OK(linattn_causal_conv(ctx, &a));
  CHECK(close_to(y[0], 0.5 * 4.0 - 1.0 * 1.0));
  CHECK(close_to(y[1], 0.5 * 1.0 - 1.0 * 2.0));
  CHECK(close_to(y[2], 0.5 * 2.0 - 1.0 * 3.0));
  CHECK(close_to(state[0], 3.0));
}

int main(void) {
  linattn_context_options opt = linattn_context_default_options();
  linattn_context* ctx = NULL;
  linattn_update_rule rule = LINATTN_RULE_LINEAR;

  CHECK(strcmp(linattn_status_name(LINATTN_OK), "OK") == 0);
  CHECK(strcmp(linattn_dtype_name(LINATTN_BFLOAT16), "bfloat16") == 0);
  CHECK(linattn_dtype_size(LINATTN_FLOAT16) == 2);
  CHECK_OK(linattn_update_rule_from_string("gated_delta", &rule));
  CHECK(rule == LINATTN_RULE_GATED_DELTA);
  CHECK(strcmp(linattn_update_rule_name(rule), "gated_delta") == 0);
  CHECK(linattn_update_rule_from_string("bogus", &rule) == LINATTN_ERROR_INVALID_ARGUMENT);
  CHECK(strstr(linattn_last_error(), "bogus") != NULL);

  opt.backend = LINATTN_BACKEND_CPU;
  opt.num_threads = 1;
  CHECK_OK(linattn_context_create(&opt, &ctx));
  CHECK(strcmp(linattn_last_error(), "") == 0); /* success clears the last error */
  if (ctx != NULL) {
    linear_attention_case(ctx);
    causal_conv_case(ctx);
    linattn_context_destroy(ctx);
  }
  if (failures) fprintf(stderr, "c_api_smoke: %d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
