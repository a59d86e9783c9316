// The C ABI (include/linattn/linattn.h): argument checking, then dispatch to one backend.
// Every entry point is wrapped so that no exception crosses the ABI, and the message of a
// failure goes to a thread-local string. A successful call clears that string, so
// linattn_last_error() always describes the most recent status-returning call of the thread.
#include <cmath>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "core/backend.hpp"
#include "core/check.hpp"
#include "core/context.hpp"
#include "core/serving.hpp"
#include "core/status.hpp"
#include "core/view_check.hpp"
#include "linattn/linattn.h"

namespace linattn::detail {
namespace {

thread_local std::string t_last_error;

linattn_status record(const Status& s) noexcept {
  try {
    if (s.ok()) {
      t_last_error.clear();
    } else {
      t_last_error = s.message();
    }
  } catch (...) {
    // Out of memory while copying the message: keep what fits in the string already.
  }
  return s.code();
}

// Runs fn (returning Status) and turns every escape route into a status code.
template <class Fn>
linattn_status guarded(const char* where, Fn&& fn) noexcept {
  try {
    return record(fn());
  } catch (const std::bad_alloc&) {
    record(Status(LINATTN_ERROR_OUT_OF_MEMORY, std::string(where) + ": out of host memory"));
    return LINATTN_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    record(Status(LINATTN_ERROR_INTERNAL,
                  std::string(where) + ": internal error: " + e.what()));
    return LINATTN_ERROR_INTERNAL;
  } catch (...) {
    record(Status(LINATTN_ERROR_INTERNAL, std::string(where) + ": internal error"));
    return LINATTN_ERROR_INTERNAL;
  }
}

Status null_argument(const char* where, const char* what) {
  return invalid(std::string(where) + ": " + what + " is NULL");
}

bool backend_known(int b) {
  return b == LINATTN_BACKEND_CPU || b == LINATTN_BACKEND_CUDA ||
         b == LINATTN_BACKEND_REFERENCE;
}

Status run_linear_attention(linattn_context* ctx, const LinearAttentionParams& p) {
  switch (ctx->backend) {
    case LINATTN_BACKEND_REFERENCE: return reference::linear_attention(p, ctx->exec());
    case LINATTN_BACKEND_CPU: return cpu::linear_attention(p, ctx->exec());
    case LINATTN_BACKEND_CUDA: {
      LINATTN_RETURN_IF_ERROR(ctx->ensure_workspace(cuda::linear_attention_workspace_bytes(p, ctx->device_id)));
      return cuda::linear_attention(p, ctx->exec());
    }
  }
  return Status(LINATTN_ERROR_INTERNAL, "linattn_linear_attention: context has no backend");
}

Status run_causal_conv(linattn_context* ctx, const CausalConvParams& p) {
  switch (ctx->backend) {
    case LINATTN_BACKEND_REFERENCE: return reference::causal_conv(p, ctx->exec());
    case LINATTN_BACKEND_CPU: return cpu::causal_conv(p, ctx->exec());
    case LINATTN_BACKEND_CUDA: return cuda::causal_conv(p, ctx->exec());
  }
  return Status(LINATTN_ERROR_INTERNAL, "linattn_causal_conv: context has no backend");
}

// Serving calls (any serving field set): checked, then on host backends run as dense calls of
// the backend along the plan (src/core/serving.hpp); the CUDA backend resolves the indices in
// its kernels (src/cuda/serving.cu).
Status serve_linear_attention(linattn_context* ctx, const linattn_linear_attention_args& a) {
  ServingLinearAttention s;
  LINATTN_RETURN_IF_ERROR(check_linear_attention_serving(a, ctx->backend, &s));
  if (ctx->backend == LINATTN_BACKEND_CUDA) {
    LINATTN_RETURN_IF_ERROR(ctx->ensure_workspace(cuda::linear_attention_serving_workspace_bytes(s, ctx->device_id)));
    return cuda::linear_attention_serving(s, ctx->exec());
  }
  if (ctx->backend == LINATTN_BACKEND_REFERENCE) {
    return run_linear_attention_serving(s, &reference::linear_attention, LINATTN_FLOAT64,
                                        ctx->exec());
  }
  return run_linear_attention_serving(s, &cpu::linear_attention, LINATTN_FLOAT32, ctx->exec());
}

Status serve_causal_conv(linattn_context* ctx, const linattn_causal_conv_args& a) {
  ServingCausalConv s;
  LINATTN_RETURN_IF_ERROR(check_causal_conv_serving(a, ctx->backend, &s));
  if (ctx->backend == LINATTN_BACKEND_CUDA) return cuda::causal_conv_serving(s, ctx->exec());
  if (ctx->backend == LINATTN_BACKEND_REFERENCE) {
    return run_causal_conv_serving(s, &reference::causal_conv, LINATTN_FLOAT64, ctx->exec());
  }
  return run_causal_conv_serving(s, &cpu::causal_conv, LINATTN_FLOAT32, ctx->exec());
}

// A spin longer than a second would be a busy-wait, not a wake-up shortcut.
constexpr int32_t kMaxSpinUs = 1'000'000;

Status create_context(const linattn_context_options* options, linattn_context** out) {
  constexpr const char* kWhere = "linattn_context_create";
  if (!out) return null_argument(kWhere, "out");
  *out = nullptr;
  if (!options) return null_argument(kWhere, "options");
  if (!backend_known(enum_value(options->backend))) {
    return invalid(std::string(kWhere) + ": unknown backend value " +
                   std::to_string(enum_value(options->backend)) +
                   "; expected LINATTN_BACKEND_CPU (0), LINATTN_BACKEND_CUDA (1) or "
                   "LINATTN_BACKEND_REFERENCE (2)");
  }
  if (options->num_threads < 0) {
    return invalid(std::string(kWhere) + ": num_threads is " +
                   std::to_string(options->num_threads) + "; expected >= 0 (0 = all hardware "
                   "threads)");
  }
  if (options->spin_us < 0 || options->spin_us > kMaxSpinUs) {
    return invalid(std::string(kWhere) + ": spin_us is " + std::to_string(options->spin_us) +
                   "; expected 0 to " + std::to_string(kMaxSpinUs) +
                   " (microseconds; 0 = threads sleep at once)");
  }
  if (options->backend == LINATTN_BACKEND_CUDA) {
#if defined(LINATTN_WITH_CUDA)
    if (options->device_id < 0) {
      return invalid(std::string(kWhere) + ": device_id is " +
                     std::to_string(options->device_id) + "; expected a CUDA device ordinal >= 0");
    }
    if (!cuda::available()) {
      return Status(LINATTN_ERROR_BACKEND_UNAVAILABLE,
                    std::string(kWhere) + ": the CUDA backend was requested but no CUDA device "
                    "is visible (check the driver and CUDA_VISIBLE_DEVICES)");
    }
#else
    return Status(LINATTN_ERROR_BACKEND_UNAVAILABLE,
                  std::string(kWhere) + ": the CUDA backend was requested but linattn was built "
                  "without it (configure with -DLINATTN_CUDA=ON on a machine with nvcc)");
#endif
  }
  auto ctx = std::make_unique<linattn_context>();
  ctx->backend = options->backend;
  ctx->device_id = options->device_id;
  ctx->stream = options->stream;
  if (options->backend != LINATTN_BACKEND_CUDA) {
    ctx->pool = std::make_unique<ThreadPool>(options->num_threads, options->spin_us);
  }
  *out = ctx.release();
  return Status::ok_status();
}

}  // namespace
}  // namespace linattn::detail

using namespace linattn::detail;

extern "C" {

namespace {
// Every serving extension off: the dense operator.
linattn_serving_args default_serving() {
  linattn_serving_args s;
  std::memset(&s, 0, sizeof s);
  s.cu_seqlens = s.state_indices = s.read_state_indices = s.has_initial_state =
      linattn_tensor_absent();
  s.num_accepted_tokens = s.error_flag = s.A_log = s.dt_bias = s.checkpoint_indices =
      linattn_tensor_absent();
  s.state_layout = LINATTN_STATE_KEY_MAJOR;
  return s;
}
}  // namespace

linattn_linear_attention_args linattn_linear_attention_args_default(void) {
  linattn_linear_attention_args a;
  std::memset(&a, 0, sizeof a);
  a.update_rule = LINATTN_RULE_GATED_DELTA;
  a.query = a.key = a.value = a.past_state = a.decay = a.beta = linattn_tensor_absent();
  a.output = a.present_state = linattn_tensor_absent();
  a.serving = default_serving();
  return a;
}

linattn_causal_conv_args linattn_causal_conv_args_default(void) {
  linattn_causal_conv_args a;
  std::memset(&a, 0, sizeof a);
  a.activation = LINATTN_ACTIVATION_NONE;
  a.input = a.weight = a.bias = a.past_state = a.output = a.present_state =
      linattn_tensor_absent();
  a.serving = default_serving();
  return a;
}

linattn_context_options linattn_context_default_options(void) {
  linattn_context_options o;
  std::memset(&o, 0, sizeof(o));
  o.backend = LINATTN_BACKEND_CPU;
  o.device_id = 0;
  o.num_threads = 0;
  o.stream = nullptr;
  o.spin_us = ThreadPool::kDefaultSpinUs;
  return o;
}

linattn_status linattn_context_create(const linattn_context_options* options,
                                      linattn_context** out) {
  return guarded("linattn_context_create", [&] { return create_context(options, out); });
}

void linattn_context_destroy(linattn_context* ctx) {
  try {
    delete ctx;
  } catch (...) {
    // Joining threads cannot throw here in practice; never let it cross the ABI.
  }
}

linattn_status linattn_context_set_stream(linattn_context* ctx, void* stream) {
  return guarded("linattn_context_set_stream", [&] {
    if (!ctx) return null_argument("linattn_context_set_stream", "ctx");
    ctx->stream = stream;
    return Status::ok_status();
  });
}

linattn_status linattn_context_reserve_workspace(linattn_context* ctx, size_t bytes) {
  return guarded("linattn_context_reserve_workspace", [&] {
    if (!ctx) return null_argument("linattn_context_reserve_workspace", "ctx");
    // Host backends have no device workspace: reserving is a no-op for them.
    if (ctx->backend != LINATTN_BACKEND_CUDA) return Status::ok_status();
    return ctx->ensure_workspace(bytes);
  });
}

linattn_status linattn_linear_attention(linattn_context* ctx,
                                        const linattn_linear_attention_args* args) {
  return guarded("linattn_linear_attention", [&] {
    if (!ctx) return null_argument("linattn_linear_attention", "ctx");
    if (!args) return null_argument("linattn_linear_attention", "args");
    if (serving_requested(args->serving)) return serve_linear_attention(ctx, *args);
    LinearAttentionParams p;
    LINATTN_RETURN_IF_ERROR(check_linear_attention(*args, ctx->backend, &p));
    return run_linear_attention(ctx, p);
  });
}

linattn_status linattn_causal_conv(linattn_context* ctx, const linattn_causal_conv_args* args) {
  return guarded("linattn_causal_conv", [&] {
    if (!ctx) return null_argument("linattn_causal_conv", "ctx");
    if (!args) return null_argument("linattn_causal_conv", "args");
    if (serving_requested(args->serving)) return serve_causal_conv(ctx, *args);
    CausalConvParams p;
    LINATTN_RETURN_IF_ERROR(check_causal_conv(*args, ctx->backend, &p));
    return run_causal_conv(ctx, p);
  });
}

linattn_status linattn_linear_attention_supports(const linattn_context* ctx,
                                                 const linattn_linear_attention_args* args) {
  return guarded("linattn_linear_attention_supports", [&] {
    if (!ctx) return null_argument("linattn_linear_attention_supports", "ctx");
    if (!args) return null_argument("linattn_linear_attention_supports", "args");
    if (serving_requested(args->serving)) {
      ServingLinearAttention s;
      return check_linear_attention_serving(*args, ctx->backend, &s);
    }
    LinearAttentionParams p;
    return check_linear_attention(*args, ctx->backend, &p);
  });
}

linattn_status linattn_causal_conv_supports(const linattn_context* ctx,
                                            const linattn_causal_conv_args* args) {
  return guarded("linattn_causal_conv_supports", [&] {
    if (!ctx) return null_argument("linattn_causal_conv_supports", "ctx");
    if (!args) return null_argument("linattn_causal_conv_supports", "args");
    if (serving_requested(args->serving)) {
      ServingCausalConv s;
      return check_causal_conv_serving(*args, ctx->backend, &s);
    }
    CausalConvParams p;
    return check_causal_conv(*args, ctx->backend, &p);
  });
}

linattn_status linattn_linear_attention_workspace_size(const linattn_context* ctx,
                                                       const linattn_linear_attention_args* args,
                                                       size_t* bytes) {
  return guarded("linattn_linear_attention_workspace_size", [&] {
    constexpr const char* kWhere = "linattn_linear_attention_workspace_size";
    if (!ctx) return null_argument(kWhere, "ctx");
    if (!args) return null_argument(kWhere, "args");
    if (!bytes) return null_argument(kWhere, "bytes");
    if (serving_requested(args->serving)) {
      ServingLinearAttention s;
      LINATTN_RETURN_IF_ERROR(check_linear_attention_serving(*args, ctx->backend, &s));
      *bytes = ctx->backend == LINATTN_BACKEND_CUDA
                   ? cuda::linear_attention_serving_workspace_bytes(s, ctx->device_id)
                   : 0;
      return Status::ok_status();
    }
    LinearAttentionParams p;
    LINATTN_RETURN_IF_ERROR(check_linear_attention(*args, ctx->backend, &p));
    *bytes = ctx->backend == LINATTN_BACKEND_CUDA ? cuda::linear_attention_workspace_bytes(p, ctx->device_id) : 0;
    return Status::ok_status();
  });
}

const char* linattn_last_error(void) { return t_last_error.c_str(); }

const char* linattn_status_name(linattn_status status) {
  switch (enum_value(status)) {
    case LINATTN_OK: return "OK";
    case LINATTN_ERROR_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case LINATTN_ERROR_UNSUPPORTED: return "UNSUPPORTED";
    case LINATTN_ERROR_BACKEND_UNAVAILABLE: return "BACKEND_UNAVAILABLE";
    case LINATTN_ERROR_DEVICE: return "DEVICE_ERROR";
    case LINATTN_ERROR_OUT_OF_MEMORY: return "OUT_OF_MEMORY";
    case LINATTN_ERROR_INTERNAL: return "INTERNAL_ERROR";
  }
  return "UNKNOWN_STATUS";
}

const char* linattn_dtype_name(linattn_dtype dtype) {
  switch (enum_value(dtype)) {
    case LINATTN_FLOAT32: return "float32";
    case LINATTN_FLOAT16: return "float16";
    case LINATTN_BFLOAT16: return "bfloat16";
    case LINATTN_FLOAT64: return "float64";
    case LINATTN_INT32: return "int32";
    case LINATTN_INT64: return "int64";
  }
  return "unknown";
}

size_t linattn_dtype_size(linattn_dtype dtype) { return dtype_bytes(enum_value(dtype)); }

int32_t linattn_cuda_available(void) {
  try {
    return cuda::available() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

linattn_tensor linattn_tensor_absent(void) {
  linattn_tensor t;
  std::memset(&t, 0, sizeof(t));
  t.dtype = LINATTN_FLOAT32;
  t.memory = LINATTN_MEMORY_HOST;
  t.rank = 0;
  return t;
}

linattn_tensor linattn_tensor_contiguous(void* data, linattn_dtype dtype, linattn_memory memory,
                                         int32_t rank, const int64_t* shape) {
  linattn_tensor t = linattn_tensor_absent();
  t.data = data;
  t.dtype = dtype;
  t.memory = memory;
  if (rank < 0 || rank > LINATTN_MAX_RANK || (rank > 0 && !shape)) {
    t.rank = -1;  // malformed: validation rejects it with the rank in the message
    return t;
  }
  t.rank = rank;
  int64_t stride = 1;
  for (int32_t i = rank - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = stride;
    // Row-major; an empty or size-1 dim does not scale the strides outside it (as PyTorch).
    // Saturate on overflow: validation then reports the offset overflow.
    const int64_t extent = shape[i] > 1 ? shape[i] : 1;
    if (__builtin_mul_overflow(stride, extent, &stride)) stride = INT64_MAX;
  }
  return t;
}

linattn_status linattn_update_rule_from_string(const char* name, linattn_update_rule* out) {
  return guarded("linattn_update_rule_from_string", [&] {
    constexpr const char* kWhere = "linattn_update_rule_from_string";
    if (!name) return null_argument(kWhere, "name");
    if (!out) return null_argument(kWhere, "out");
    static constexpr std::pair<const char*, linattn_update_rule> kRules[] = {
        {"linear", LINATTN_RULE_LINEAR},
        {"gated", LINATTN_RULE_GATED},
        {"delta", LINATTN_RULE_DELTA},
        {"gated_delta", LINATTN_RULE_GATED_DELTA}};
    for (const auto& [n, r] : kRules) {
      if (std::strcmp(name, n) == 0) {
        *out = r;
        return Status::ok_status();
      }
    }
    return invalid(std::string(kWhere) + ": unknown update_rule \"" + name +
                   "\"; expected one of linear, gated, delta, gated_delta");
  });
}

const char* linattn_update_rule_name(linattn_update_rule rule) {
  switch (enum_value(rule)) {
    case LINATTN_RULE_LINEAR: return "linear";
    case LINATTN_RULE_GATED: return "gated";
    case LINATTN_RULE_DELTA: return "delta";
    case LINATTN_RULE_GATED_DELTA: return "gated_delta";
  }
  return "unknown";
}

linattn_status linattn_activation_from_string(const char* name, linattn_activation* out) {
  return guarded("linattn_activation_from_string", [&] {
    constexpr const char* kWhere = "linattn_activation_from_string";
    if (!name) return null_argument(kWhere, "name");
    if (!out) return null_argument(kWhere, "out");
    if (std::strcmp(name, "none") == 0) {
      *out = LINATTN_ACTIVATION_NONE;
    } else if (std::strcmp(name, "silu") == 0 || std::strcmp(name, "swish") == 0) {
      *out = LINATTN_ACTIVATION_SILU;
    } else {
      return invalid(std::string(kWhere) + ": unknown activation \"" + name +
                     "\"; expected one of none, silu, swish");
    }
    return Status::ok_status();
  });
}

}  // extern "C"
