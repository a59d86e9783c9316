/* Links the installed shared library from C and runs one call through it. */
#include <stdio.h>
#include <string.h>

#include <linattn/linattn.h>

int main(void) {
  float x[2] = {1.0f, 2.0f}, w[1] = {3.0f}, y[2] = {0.0f, 0.0f};
  const int64_t xs[3] = {1, 1, 2}, ws[3] = {1, 1, 1}, ss[3] = {1, 1, 0};
  linattn_context_options opt = linattn_context_default_options();
  linattn_context* ctx = NULL;
  linattn_causal_conv_args a;
  linattn_status s;
  memset(&a, 0, sizeof(a));
  opt.num_threads = 1;
  if (linattn_context_create(&opt, &ctx) != LINATTN_OK) {
    fprintf(stderr, "consumer_c: %s\n", linattn_last_error());
    return 1;
  }
  a.activation = LINATTN_ACTIVATION_NONE;
  a.input = linattn_tensor_contiguous(x, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.weight = linattn_tensor_contiguous(w, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ws);
  a.bias = linattn_tensor_absent();
  a.past_state = linattn_tensor_absent();
  a.output = linattn_tensor_contiguous(y, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, xs);
  a.present_state = linattn_tensor_contiguous(NULL, LINATTN_FLOAT32, LINATTN_MEMORY_HOST, 3, ss);
  s = linattn_causal_conv(ctx, &a);
  linattn_context_destroy(ctx);
  if (s != LINATTN_OK || y[0] != 3.0f || y[1] != 6.0f) {
    fprintf(stderr, "consumer_c: %s: %s (y = %g %g)\n", linattn_status_name(s),
            linattn_last_error(), y[0], y[1]);
    return 1;
  }
  printf("consumer_c: ok\n");
  return 0;
}
