/* linattn: recurrent-state operators of hybrid language models.
 *
 * C ABI. Every function returns a linattn_status (0 = success) and never lets an exception,
 * a print or an abort escape. The message of the last failure on the calling thread is
 * returned by linattn_last_error().
 *
 * Semantics: docs/SEMANTICS.md (the ONNX Runtime com.microsoft LinearAttention and
 * CausalConvWithState contrib ops, a superset of ONNX LinearAttention-27 and
 * CausalConvWithState-27).
 *
 * Tensor views are non-owning: a data pointer, a dtype, the memory space, a rank, a shape and
 * strides counted in ELEMENTS (not bytes). The innermost dimension must have stride 1; outer
 * strides are free (>= 0 for inputs; outputs must not overlap themselves), so q/k/v may be
 * sliced out of a fused projection without a copy. An optional input that is absent is a view
 * of rank 0 (use linattn_tensor_absent()).
 */
#ifndef LINATTN_LINATTN_H_
#define LINATTN_LINATTN_H_

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#  if defined(LINATTN_BUILDING_SHARED)
#    define LINATTN_API __declspec(dllexport)
#  elif defined(LINATTN_USING_SHARED)
#    define LINATTN_API __declspec(dllimport)
#  else
#    define LINATTN_API
#  endif
#else
#  define LINATTN_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define LINATTN_VERSION_MAJOR 0
#define LINATTN_VERSION_MINOR 1
#define LINATTN_VERSION_PATCH 0
#define LINATTN_MAX_RANK 4

typedef enum linattn_status {
  LINATTN_OK = 0,
  LINATTN_ERROR_INVALID_ARGUMENT = 1, /* an input, output or attribute breaks a rule */
  LINATTN_ERROR_UNSUPPORTED = 2,      /* valid, but not implemented by the chosen backend */
  LINATTN_ERROR_BACKEND_UNAVAILABLE = 3, /* e.g. CUDA asked for in a build without it */
  LINATTN_ERROR_DEVICE = 4,           /* a CUDA runtime error */
  LINATTN_ERROR_OUT_OF_MEMORY = 5,
  LINATTN_ERROR_INTERNAL = 6
} linattn_status;

typedef enum linattn_dtype {
  LINATTN_FLOAT32 = 0,
  LINATTN_FLOAT16 = 1,
  LINATTN_BFLOAT16 = 2,
  LINATTN_FLOAT64 = 3, /* accepted by the reference backend only */
  LINATTN_INT32 = 4,   /* index tensors (serving extensions) */
  LINATTN_INT64 = 5
} linattn_dtype;

/* Where a tensor's memory lives. */
typedef enum linattn_memory {
  LINATTN_MEMORY_HOST = 0,
  LINATTN_MEMORY_CUDA = 1
} linattn_memory;

/* Which implementation a context runs. The reference backend is the float64 oracle: a
 * token-by-token recurrence on host memory, written for clarity, never speed. */
typedef enum linattn_backend {
  LINATTN_BACKEND_CPU = 0,
  LINATTN_BACKEND_CUDA = 1,
  LINATTN_BACKEND_REFERENCE = 2
} linattn_backend;

typedef struct linattn_tensor {
  void* data;
  linattn_dtype dtype;
  linattn_memory memory;
  int32_t rank;                     /* 0 = absent */
  int64_t shape[LINATTN_MAX_RANK];
  int64_t strides[LINATTN_MAX_RANK]; /* in elements */
} linattn_tensor;

typedef enum linattn_update_rule {
  LINATTN_RULE_LINEAR = 0,      /* S <- S + k v^T */
  LINATTN_RULE_GATED = 1,       /* S <- exp(g) S + k v^T */
  LINATTN_RULE_DELTA = 2,       /* S <- S + k (beta (v - S^T k))^T */
  LINATTN_RULE_GATED_DELTA = 3  /* S <- exp(g) S, then the delta update */
} linattn_update_rule;

typedef enum linattn_activation {
  LINATTN_ACTIVATION_NONE = 0,
  LINATTN_ACTIVATION_SILU = 1 /* x / (1 + exp(-x)); "swish" is the same function */
} linattn_activation;

/* LinearAttention. Shapes (B batch, T tokens, H_q query heads, n_k key heads, H_kv value heads,
 * d_k = query.shape[2] / H_q, d_v = value.shape[2] / H_kv, H_out = max(H_q, H_kv)):
 *   query          (B, T, H_q * d_k)
 *   key            (B, T, n_k * d_k)      n_k divides H_kv
 *   value          (B, T, H_kv * d_v)
 *   past_state     (B, H_kv, d_k, d_v)    optional (rank 0 = zeros)
 *   decay          (B, T, H_kv) or (B, T, H_kv * d_k)   optional; log-space gate
 *   beta           (B, T, H_kv) or (B, T, 1)            optional; (B,T,1) shared by all heads
 *   output         (B, T, H_out * d_v)    written
 *   present_state  (B, H_kv, d_k, d_v)    written; may alias past_state exactly (same data
 *                                         pointer and strides) for an in-place update
 * query, key, value, decay, beta and output share one dtype (float32, float16, bfloat16);
 * past_state and present_state may each be float32, float16 or bfloat16, independently.
 * gated/gated_delta need decay; delta/gated_delta need beta. */
typedef struct linattn_linear_attention_args {
  int32_t q_num_heads;
  int32_t kv_num_heads;
  linattn_update_rule update_rule;
  float scale;        /* 0 = 1/sqrt(d_k) */
  int32_t chunk_size; /* tuning hint, never changes results; 0 = default (64) */
  int32_t strict;     /* nonzero: ONNX-standard mode, decay/beta given to a rule that does not
                         use them are rejected (default: validated and ignored, as ONNX Runtime) */
  linattn_tensor query, key, value, past_state, decay, beta;
  linattn_tensor output, present_state;
} linattn_linear_attention_args;

/* CausalConvWithState: depthwise causal 1D convolution with a carried state.
 *   input          (B, C, L), or (B, L, C) when channels_last
 *   weight         (C, 1, k)              k >= 1
 *   bias           (C)                    optional
 *   past_state     (B, C, k-1)            optional (rank 0 = zeros)
 *   output         same shape as input    written
 *   present_state  (B, C, k-1)            written (zero-size when k = 1); may alias past_state
 * input, weight, bias and output share one dtype; the states may each be float32, float16 or
 * bfloat16. */
typedef struct linattn_causal_conv_args {
  linattn_activation activation;
  int32_t channels_last;
  linattn_tensor input, weight, bias, past_state;
  linattn_tensor output, present_state;
} linattn_causal_conv_args;

/* A context: the backend, its device and stream, the CPU thread pool, the GPU workspace. One
 * context must not be used by two threads at once; make one per thread instead. */
typedef struct linattn_context linattn_context;

typedef struct linattn_context_options {
  linattn_backend backend;
  int32_t device_id;   /* CUDA device ordinal */
  int32_t num_threads; /* CPU threads; 0 = all hardware threads */
  void* stream;        /* cudaStream_t; NULL = the legacy default stream */
} linattn_context_options;

LINATTN_API linattn_context_options linattn_context_default_options(void);
LINATTN_API linattn_status linattn_context_create(const linattn_context_options* options,
                                                  linattn_context** out);
LINATTN_API void linattn_context_destroy(linattn_context* ctx);
LINATTN_API linattn_status linattn_context_set_stream(linattn_context* ctx, void* stream);
/* Reserve device workspace up front so that later calls allocate nothing. Calls that need more
 * than is reserved grow it once (an allocation outside any graph capture). */
LINATTN_API linattn_status linattn_context_reserve_workspace(linattn_context* ctx, size_t bytes);

/* Validates, then runs on the context's backend. On any error nothing is written to any
 * output. GPU calls are asynchronous on the context's stream. */
LINATTN_API linattn_status linattn_linear_attention(linattn_context* ctx,
                                                    const linattn_linear_attention_args* args);
LINATTN_API linattn_status linattn_causal_conv(linattn_context* ctx,
                                               const linattn_causal_conv_args* args);

/* Validation only: LINATTN_OK when the context's backend can run args. */
LINATTN_API linattn_status linattn_linear_attention_supports(
    const linattn_context* ctx, const linattn_linear_attention_args* args);
LINATTN_API linattn_status linattn_causal_conv_supports(const linattn_context* ctx,
                                                        const linattn_causal_conv_args* args);

/* Device workspace in bytes that a call with these args needs (0 on the CPU). */
LINATTN_API linattn_status linattn_linear_attention_workspace_size(
    const linattn_context* ctx, const linattn_linear_attention_args* args, size_t* bytes);

/* The message of the last failed call on this thread ("" when none). */
LINATTN_API const char* linattn_last_error(void);
LINATTN_API const char* linattn_status_name(linattn_status status);
LINATTN_API const char* linattn_dtype_name(linattn_dtype dtype);
LINATTN_API size_t linattn_dtype_size(linattn_dtype dtype);
/* Nonzero when this build has the CUDA backend and a device is visible. */
LINATTN_API int32_t linattn_cuda_available(void);

/* Helpers to build views. Contiguous (row-major) strides. */
LINATTN_API linattn_tensor linattn_tensor_absent(void);
LINATTN_API linattn_tensor linattn_tensor_contiguous(void* data, linattn_dtype dtype,
                                                     linattn_memory memory, int32_t rank,
                                                     const int64_t* shape);

/* Parsing and naming of attributes, as the ONNX attributes spell them. */
LINATTN_API linattn_status linattn_update_rule_from_string(const char* name,
                                                           linattn_update_rule* out);
LINATTN_API const char* linattn_update_rule_name(linattn_update_rule rule);
/* "none", "silu" and "swish" (an alias of silu). */
LINATTN_API linattn_status linattn_activation_from_string(const char* name,
                                                          linattn_activation* out);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LINATTN_LINATTN_H_ */
