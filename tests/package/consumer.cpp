// Links the installed static library from C++ through the header-only C++ layer.
#include <cstdio>
#include <string>

#include <linattn/linattn.hpp>

int main() {
  linattn::Context ctx;
  linattn::Status s = linattn::Context::create(LINATTN_BACKEND_CPU, &ctx, 1);
  if (!s) {
    std::fprintf(stderr, "consumer_cpp: %s\n", s.to_string().c_str());
    return 1;
  }
  // An invalid call must come back as a status with a message, not a crash.
  linattn::LinearAttentionArgs a = linattn::default_linear_attention_args();
  a.q_num_heads = a.kv_num_heads = 1;  // valid attributes, but no query given
  s = linattn::linear_attention(ctx, a);
  if (s.code() != LINATTN_ERROR_INVALID_ARGUMENT || s.message().find("query") == std::string::npos) {
    std::fprintf(stderr, "consumer_cpp: unexpected %s\n", s.to_string().c_str());
    return 1;
  }
  std::printf("consumer_cpp: ok\n");
  return 0;
}
