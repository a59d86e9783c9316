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

/* Layout of a recurrent state block (one kv head of one sequence or pool slot). */
typedef enum linattn_state_layout {
  LINATTN_STATE_KEY_MAJOR = 0,  /* (d_k, d_v): rows index key dims (ONNX, the default) */
  LINATTN_STATE_VALUE_MAJOR = 1 /* (d_v, d_k): rows index value dims (vLLM / FLA pools) */
} linattn_state_layout;

/* Serving extensions (docs/SERVING.md), shared by both operators. Everything zero (rank-0
 * tensors, zero scalars) is the dense ONNX operator; any field set turns on the serving path.
 * Index tensors are int32 or int64, in the memory space of the other tensors, innermost stride
 * 1. N = number of sequences. Index contents are data: on host backends they are checked before
 * anything is written and a bad value is LINATTN_ERROR_INVALID_ARGUMENT naming the sequence and
 * the value; the CUDA backend cannot read them without a synchronisation, so its kernels skip
 * the offending sequence (nothing of it read or written) and report through error_flag
 * instead (docs/SERVING.md "Index errors").
 *
 *   cu_seqlens          (N+1)      variable-length batch: sequence n owns packed tokens
 *                                  [cu_seqlens[n], cu_seqlens[n+1]); cu_seqlens[0] = 0,
 *                                  non-decreasing (zero-length sequences allowed), last = T.
 *                                  The token-indexed tensors then have batch dim 1: query, key,
 *                                  value, decay, beta, output (1, T, ...); conv input/output
 *                                  (1, C, T) or (1, T, C). Without it, N = B (one sequence per
 *                                  batch row).
 *   state_indices       (N)        state pool: past_state/present_state become pools
 *                                  (slots, H_kv, d_k, d_v) (conv: (slots, C, k-1)), slot stride =
 *                                  strides[0] (padding allowed); sequence n reads and updates
 *                                  slot state_indices[n] in place. -1 = PAD: the sequence is
 *                                  skipped (nothing read or written, its output rows are zero).
 *                                  present_state is the pool written; past_state is the pool
 *                                  read: absent = read present_state (the usual in-place pool),
 *                                  or an exact alias of it, or a separate pool of the same
 *                                  block shape. Without state_indices, past/present_state have
 *                                  one row per sequence: (N, ...).
 *                      (N, T_s)   speculative decoding (attention and conv alike): sequence n
 *                                  has at most T_s tokens; the state after its token t is
 *                                  written to slot state_indices[n, t] (-1 = not stored); the
 *                                  sequence is PAD when state_indices[n, 0] = -1.
 *   read_state_indices  (N)        optional, pool only, not speculative: slot read by sequence n
 *                                  (default state_indices[n]); -1 = start from zeros.
 *   has_initial_state   (N)        optional: 0 = sequence n starts from zeros (nothing read),
 *                                  nonzero = from its slot / row. Absent = every sequence reads.
 *   num_accepted_tokens (N)        speculative only, optional (absent = all 1): sequence n starts
 *                                  from slot state_indices[n, num_accepted_tokens[n] - 1], the
 *                                  state after the last token it kept in the previous step (the
 *                                  vLLM convention); values in [1, T_s].
 *   error_flag          (1) int32  optional output: set to 0 by a successful call. The CUDA
 *                                  backend clears it on the stream, then sets it to 1 + n for
 *                                  a sequence n whose indices break a rule (one of them when
 *                                  several do); read it after synchronising.
 * LinearAttention only (must be zero for the conv):
 *   state_layout                   key-major (d_k, d_v) (default) or value-major (d_v, d_k) for
 *                                  past_state, present_state and checkpoints (dense or pool).
 *   qk_l2norm                      nonzero: q and k are L2-normalised per head inside the call,
 *                                  x * 1/sqrt(sum(x^2) + eps) (FLA/vLLM use_qk_l2norm_in_kernel).
 *   qk_l2norm_eps                  eps of that formula; 0 = 1e-6.
 *   fused_gating                   nonzero: decay holds the raw projection a (B, T, H_kv), beta
 *                                  the raw b (B, T, H_kv), and the gates are computed inside
 *                                  the call: g = -exp(A_log[h]) * softplus(a + dt_bias[h])
 *                                  (softplus(x) = log(1 + exp(x)), = x above 20),
 *                                  beta = sigmoid(b).
 *   A_log, dt_bias      (H_kv)     float32/float16/bfloat16; A_log required with fused_gating,
 *                                  dt_bias optional (zeros).
 *   checkpoint_interval            prefix caching: 0 = off; else n > 0, a multiple of the chunk
 *                                  size; needs state_indices (N), not speculative.
 *   checkpoint_indices  (N, M)     the state of sequence n after its tokens j*n (j = 1..M,
 *                                  counted from the first token of this call) is written to
 *                                  pool slot checkpoint_indices[n, j-1] of present_state;
 *                                  -1 = not stored; checkpoints past the sequence end are not
 *                                  written.
 * Slots written by one sequence must not be read or written by another sequence of the same
 * call (the result would depend on the order in which sequences run).
 *
 * Start from linattn_linear_attention_args_default() / linattn_causal_conv_args_default() (or
 * default_*_args() in C++) before setting fields: every optional tensor is then absent and the
 * serving member, and any field appended later, is off. */
typedef struct linattn_serving_args {
  linattn_tensor cu_seqlens, state_indices, read_state_indices, has_initial_state;
  linattn_tensor num_accepted_tokens, error_flag;
  linattn_state_layout state_layout;
  int32_t qk_l2norm;
  float qk_l2norm_eps;
  int32_t fused_gating;
  linattn_tensor A_log, dt_bias;
  int64_t checkpoint_interval;
  linattn_tensor checkpoint_indices;
} linattn_serving_args;

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
  linattn_serving_args serving; /* all zero = the dense operator (see above) */
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
  linattn_serving_args serving; /* all zero = the dense operator; attention-only fields must
                                   stay zero */
} linattn_causal_conv_args;

/* A context: the backend, its device and stream, the CPU thread pool, the GPU workspace. One
 * context must not be used by two threads at once; make one per thread instead. */
typedef struct linattn_context linattn_context;

typedef struct linattn_context_options {
  linattn_backend backend;
  int32_t device_id;   /* CUDA device ordinal */
  int32_t num_threads; /* CPU threads; 0 = all hardware threads */
  void* stream;        /* cudaStream_t; NULL = the legacy default stream */
  int32_t spin_us;     /* CPU: microseconds a thread of the pool spins, waiting for the next call
                          (workers) or for the workers to finish (the caller), before it sleeps;
                          0 = sleep at once. Default 200: back-to-back decode steps skip the
                          wake-up through the scheduler, an idle pool sleeps soon after. */
} linattn_context_options;

LINATTN_API linattn_context_options linattn_context_default_options(void);

/* Argument structs with every tensor absent, update_rule gated_delta, activation none, and every
 * serving extension off: the dense ONNX operator. Fill in the fields you use. */
LINATTN_API linattn_linear_attention_args linattn_linear_attention_args_default(void);
LINATTN_API linattn_causal_conv_args linattn_causal_conv_args_default(void);
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
