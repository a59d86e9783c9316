// linattn C++ API: a thin, header-only layer over the C ABI in linattn.h. No exceptions are
// thrown; every call returns a linattn::Status. The argument structs are the C structs, so the
// shapes documented in linattn.h hold here word for word.
#ifndef LINATTN_LINATTN_HPP_
#define LINATTN_LINATTN_HPP_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "linattn/linattn.h"

namespace linattn {

using DType = linattn_dtype;
using Memory = linattn_memory;
using Backend = linattn_backend;
using Tensor = linattn_tensor;
using UpdateRule = linattn_update_rule;
using Activation = linattn_activation;
using LinearAttentionArgs = linattn_linear_attention_args;
using CausalConvArgs = linattn_causal_conv_args;
using ContextOptions = linattn_context_options;
using ServingArgs = linattn_serving_args;
using StateLayout = linattn_state_layout;

// A status code with the message of the failure (empty on success).
class Status {
 public:
  Status() = default;
  Status(linattn_status code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status from_c(linattn_status code) {
    return code == LINATTN_OK ? Status() : Status(code, linattn_last_error());
  }
  bool ok() const { return code_ == LINATTN_OK; }
  explicit operator bool() const { return ok(); }
  linattn_status code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const {
    return ok() ? std::string("OK")
                : std::string(linattn_status_name(code_)) + ": " + message_;
  }

 private:
  linattn_status code_ = LINATTN_OK;
  std::string message_;
};

// A contiguous (row-major) view. `shape` has at most LINATTN_MAX_RANK entries.
inline Tensor make_tensor(void* data, DType dtype, std::initializer_list<int64_t> shape,
                          Memory memory = LINATTN_MEMORY_HOST) {
  int64_t dims[LINATTN_MAX_RANK] = {0, 0, 0, 0};
  int32_t rank = 0;
  for (int64_t d : shape) {
    if (rank < LINATTN_MAX_RANK) dims[rank] = d;
    ++rank;
  }
  if (rank > LINATTN_MAX_RANK) rank = LINATTN_MAX_RANK + 1;  // rejected by validation
  Tensor t = linattn_tensor_contiguous(data, dtype, memory, rank > LINATTN_MAX_RANK ? 0 : rank,
                                       dims);
  if (rank > LINATTN_MAX_RANK) t.rank = rank;
  return t;
}

// A view with explicit strides (in elements).
inline Tensor make_strided_tensor(void* data, DType dtype, std::initializer_list<int64_t> shape,
                                  std::initializer_list<int64_t> strides,
                                  Memory memory = LINATTN_MEMORY_HOST) {
  Tensor t = make_tensor(data, dtype, shape, memory);
  int i = 0;
  for (int64_t s : strides) {
    if (i < LINATTN_MAX_RANK) t.strides[i] = s;
    ++i;
  }
  return t;
}

inline Tensor absent() { return linattn_tensor_absent(); }

// Every serving field off: the dense operator.
inline LinearAttentionArgs default_linear_attention_args() {
  return linattn_linear_attention_args_default();
}

inline CausalConvArgs default_causal_conv_args() { return linattn_causal_conv_args_default(); }

inline ServingArgs default_serving_args() { return default_causal_conv_args().serving; }

// Owns a linattn_context. Move-only.
class Context {
 public:
  Context() = default;
  ~Context() { reset(); }
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  Context(Context&& o) noexcept : ctx_(std::exchange(o.ctx_, nullptr)) {}
  Context& operator=(Context&& o) noexcept {
    if (this != &o) {
      reset();
      ctx_ = std::exchange(o.ctx_, nullptr);
    }
    return *this;
  }

  static Status create(const ContextOptions& options, Context* out) {
    linattn_context* c = nullptr;
    Status s = Status::from_c(linattn_context_create(&options, &c));
    if (s.ok()) *out = Context(c);
    return s;
  }
  static Status create(Backend backend, Context* out, int32_t num_threads = 0) {
    ContextOptions o = linattn_context_default_options();
    o.backend = backend;
    o.num_threads = num_threads;
    return create(o, out);
  }

  linattn_context* get() const { return ctx_; }
  Status set_stream(void* stream) {
    return Status::from_c(linattn_context_set_stream(ctx_, stream));
  }
  Status reserve_workspace(size_t bytes) {
    return Status::from_c(linattn_context_reserve_workspace(ctx_, bytes));
  }

 private:
  explicit Context(linattn_context* c) : ctx_(c) {}
  void reset() {
    if (ctx_) linattn_context_destroy(ctx_);
    ctx_ = nullptr;
  }
  linattn_context* ctx_ = nullptr;
};

inline Status linear_attention(Context& ctx, const LinearAttentionArgs& args) {
  return Status::from_c(linattn_linear_attention(ctx.get(), &args));
}
inline Status causal_conv(Context& ctx, const CausalConvArgs& args) {
  return Status::from_c(linattn_causal_conv(ctx.get(), &args));
}
inline Status supports(const Context& ctx, const LinearAttentionArgs& args) {
  return Status::from_c(linattn_linear_attention_supports(ctx.get(), &args));
}
inline Status supports(const Context& ctx, const CausalConvArgs& args) {
  return Status::from_c(linattn_causal_conv_supports(ctx.get(), &args));
}

}  // namespace linattn

#endif  // LINATTN_LINATTN_HPP_
