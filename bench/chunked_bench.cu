// Timing of the chunked prefill on the shapes of docs/PERFORMANCE.md (gated_delta, d = 128,
// bfloat16 q/k/v with unit q and k, float32 state in and out). Inputs are generated on the
// device; each shape is timed with events over repeated launches, median reported.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench.hpp"
#include "chunked_timing.hpp"
#include "core/backend.hpp"
#include "core/dtype.hpp"
#include "cuda/chunked_options.cuh"
#include "cuda/chunked_prefill.hpp"
#include "cuda/chunked_serving.cuh"
#include "cuda/linear_attention.hpp"

namespace linattn::bench {
namespace {

using detail::LinearAttentionParams;

__device__ float hash_uniform(uint64_t x) {  // (0, 1)
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull; x ^= x >> 33;
  return (static_cast<float>(x >> 40) + 0.5f) / 16777216.f;
}

__device__ float hash_normal(uint64_t x) {
  const float u1 = hash_uniform(2 * x), u2 = hash_uniform(2 * x + 1);
  return sqrtf(-2.f * logf(u1)) * cosf(6.2831853f * u2);
}

// kind 0: unit vectors of length d; 1: N(0,1); 2: logsigmoid(1.5 N + 2.5); 3: sigmoid(N).
__global__ void fill_kernel(uint16_t* dst, int64_t vectors, int d, int kind, uint64_t seed) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= vectors) return;
  float norm = 1.f;
  if (kind == 0) {
    float n2 = 0.f;
    for (int j = 0; j < d; ++j) { const float x = hash_normal(seed + i * d + j); n2 += x * x; }
    norm = rsqrtf(n2);
  }
  for (int j = 0; j < d; ++j) {
    float x = hash_normal(seed + i * d + j);
    if (kind == 0) x *= norm;
    if (kind == 2) x = -log1pf(expf(-(1.5f * x + 2.5f)));
    if (kind == 3) x = 1.f / (1.f + expf(-x));
    dst[i * d + j] = detail::float_to_bf16_bits(x);
  }
}

__global__ void fill_f32(float* dst, int64_t n, uint64_t seed) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) dst[i] = 0.5f * hash_normal(seed + i);
}

#define BENCH_CUDA(x)                                                              \
  do {                                                                             \
    cudaError_t e_ = (x);                                                          \
    if (e_ != cudaSuccess) {                                                       \
      std::fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_));                \
      return -1.0;                                                                 \
    }                                                                              \
  } while (0)

// Median milliseconds of `call()` over `reps` event-timed launches after two warm-ups, or -1
// when a call fails or a CUDA error occurs (reported on stderr).
template <class Call>
double median_event_ms(int reps, const char* what, Call call) {
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  std::vector<float> ms;
  double result = -1.0;
  for (int i = 0; i < reps + 2; ++i) {
    if (cudaEventRecord(a) != cudaSuccess) break;
    const detail::Status st = call();
    if (cudaEventRecord(b) != cudaSuccess) break;
    if (!st.ok()) {
      std::fprintf(stderr, "%s: %s\n", what, st.message().c_str());
      break;
    }
    float t = 0.f;
    if (cudaEventSynchronize(b) != cudaSuccess || cudaEventElapsedTime(&t, a, b) != cudaSuccess) break;
    if (i >= 2) ms.push_back(t);
  }
  if (ms.size() == static_cast<size_t>(reps)) {
    std::sort(ms.begin(), ms.end());
    result = ms[ms.size() / 2];
  } else if (cudaPeekAtLastError() != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(cudaGetLastError()));
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return result;
}

}  // namespace

double time_prefill(const PrefillShape& s, bool split, PrefillPath path, int reps, detail::cuda::ChunkedOptions o) {
  const bool prep_only = path == PrefillPath::kChunkedPrepOnly;
  const int d = 128;
  const int64_t BT = s.B * s.T;
  uint16_t *q, *k, *v, *g, *beta, *out;
  float *past, *present;
  const int64_t nstate = s.B * s.hv * d * d;
  BENCH_CUDA(cudaMalloc(&q, BT * s.hqk * d * 2));
  BENCH_CUDA(cudaMalloc(&k, BT * s.hqk * d * 2));
  BENCH_CUDA(cudaMalloc(&v, BT * s.hv * d * 2));
  BENCH_CUDA(cudaMalloc(&g, BT * s.hv * 2));
  BENCH_CUDA(cudaMalloc(&beta, BT * s.hv * 2));
  BENCH_CUDA(cudaMalloc(&out, BT * s.hv * d * 2));
  BENCH_CUDA(cudaMalloc(&past, nstate * 4));
  BENCH_CUDA(cudaMalloc(&present, nstate * 4));
  auto blocks = [](int64_t n) { return static_cast<unsigned>((n + 255) / 256); };
  fill_kernel<<<blocks(BT * s.hqk), 256>>>(q, BT * s.hqk, d, 0, 1);
  fill_kernel<<<blocks(BT * s.hqk), 256>>>(k, BT * s.hqk, d, 0, 1ull << 40);
  fill_kernel<<<blocks(BT * s.hv), 256>>>(v, BT * s.hv, d, 1, 2ull << 40);
  fill_kernel<<<blocks(BT * s.hv), 256>>>(g, BT * s.hv, 1, 2, 3ull << 40);
  fill_kernel<<<blocks(BT * s.hv), 256>>>(beta, BT * s.hv, 1, 3, 4ull << 40);
  fill_f32<<<blocks(nstate), 256>>>(past, nstate, 5ull << 40);
  BENCH_CUDA(cudaGetLastError());

  LinearAttentionParams p;
  p.B = s.B; p.T = s.T; p.Hq = s.hqk; p.Hk = s.hqk; p.Hkv = s.hv; p.Hout = std::max(s.hqk, s.hv);
  p.dk = d; p.dv = d; p.rule = LINATTN_RULE_GATED_DELTA; p.gated = true; p.delta = true;
  p.scale = 1.f / std::sqrt(static_cast<float>(d));
  p.act_dtype = LINATTN_BFLOAT16; p.past_dtype = LINATTN_FLOAT32; p.present_dtype = LINATTN_FLOAT32;
  p.q = q; p.q_st = s.hqk * d; p.q_sb = s.T * p.q_st;
  p.k = k; p.k_st = s.hqk * d; p.k_sb = s.T * p.k_st;
  p.v = v; p.v_st = s.hv * d; p.v_sb = s.T * p.v_st;
  p.decay = g; p.g_st = s.hv; p.g_sb = s.T * s.hv;
  p.beta = beta; p.beta_st = s.hv; p.beta_sb = s.T * s.hv;
  p.out = out; p.o_st = p.Hout * d; p.o_sb = s.T * p.o_st;
  p.past = past; p.past_sk = d; p.past_sh = d * d; p.past_sb = s.hv * p.past_sh;
  p.present = present; p.pres_sk = d; p.pres_sh = d * d; p.pres_sb = s.hv * p.pres_sh;

  o.split_state = split;
  o.run_scan = !prep_only;
  detail::Exec e;
  const bool recurrent = path == PrefillPath::kRecurrent;
  e.workspace_bytes = recurrent ? 0 : detail::cuda::chunked_prefill_workspace_bytes_with(p, o);
  if (e.workspace_bytes > 0) BENCH_CUDA(cudaMalloc(&e.workspace, e.workspace_bytes));
  const double t = median_event_ms(reps, "chunked prefill", [&] {
    return recurrent ? detail::cuda::linear_attention_recurrent(p, e)
                     : detail::cuda::chunked_prefill_with(p, e, o);
  });
  for (void* ptr : {e.workspace, (void*)q, (void*)k, (void*)v, (void*)g, (void*)beta, (void*)out, (void*)past, (void*)present})
    cudaFree(ptr);
  return t;
}

namespace {

// A serving prefill of packed sequences of the given lengths (16/32 heads, d = 128, gated_delta,
// bf16), read and written in place in a pool of 16 float32 slots through shuffled
// state_indices. `o`: window (max_window_chunks), numbering, prefix segments, prep only.
using Layout = detail::cuda::ChunkedServingOptions::Layout;

double time_serving(int reps, const std::vector<int64_t>& lens, const detail::cuda::ChunkedServingOptions& o) {
  const int d = 128, hqk = 16, hv = 32;
  std::vector<int32_t> cu{0};
  for (int64_t l : lens) cu.push_back(cu.back() + static_cast<int32_t>(l));
  const int64_t T = cu.back(), slots = 16;
  const std::vector<int32_t> all_slots{3, 12, 0, 7, 9, 1, 15, 5};
  if (lens.size() > all_slots.size()) return -1.0;
  const std::vector<int32_t> slot(all_slots.begin(), all_slots.begin() + static_cast<std::ptrdiff_t>(lens.size()));
  uint16_t *q, *k, *v, *g, *beta, *out;
  float* pool;
  int32_t *dcu, *dslot;
  const int64_t nstate = slots * hv * d * d;
  BENCH_CUDA(cudaMalloc(&q, T * hqk * d * 2));
  BENCH_CUDA(cudaMalloc(&k, T * hqk * d * 2));
  BENCH_CUDA(cudaMalloc(&v, T * hv * d * 2));
  BENCH_CUDA(cudaMalloc(&g, T * hv * 2));
  BENCH_CUDA(cudaMalloc(&beta, T * hv * 2));
  BENCH_CUDA(cudaMalloc(&out, T * hv * d * 2));
  BENCH_CUDA(cudaMalloc(&pool, nstate * 4));
  BENCH_CUDA(cudaMalloc(&dcu, cu.size() * 4));
  BENCH_CUDA(cudaMalloc(&dslot, slot.size() * 4));
  BENCH_CUDA(cudaMemcpy(dcu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice));
  BENCH_CUDA(cudaMemcpy(dslot, slot.data(), slot.size() * 4, cudaMemcpyHostToDevice));
  auto blocks = [](int64_t n) { return static_cast<unsigned>((n + 255) / 256); };
  fill_kernel<<<blocks(T * hqk), 256>>>(q, T * hqk, d, 0, 1);
  fill_kernel<<<blocks(T * hqk), 256>>>(k, T * hqk, d, 0, 1ull << 40);
  fill_kernel<<<blocks(T * hv), 256>>>(v, T * hv, d, 1, 2ull << 40);
  fill_kernel<<<blocks(T * hv), 256>>>(g, T * hv, 1, 2, 3ull << 40);
  fill_kernel<<<blocks(T * hv), 256>>>(beta, T * hv, 1, 3, 4ull << 40);
  fill_f32<<<blocks(nstate), 256>>>(pool, nstate, 5ull << 40);
  BENCH_CUDA(cudaGetLastError());

  detail::LinearAttentionServing s;
  LinearAttentionParams& p = s.p;
  p.B = 1; p.T = T; p.Hq = hqk; p.Hk = hqk; p.Hkv = hv; p.Hout = hv;
  p.dk = d; p.dv = d; p.rule = LINATTN_RULE_GATED_DELTA; p.gated = true; p.delta = true;
  p.scale = 1.f / std::sqrt(static_cast<float>(d));
  p.act_dtype = LINATTN_BFLOAT16; p.past_dtype = LINATTN_FLOAT32; p.present_dtype = LINATTN_FLOAT32;
  p.q = q; p.q_st = hqk * d; p.q_sb = T * p.q_st;
  p.k = k; p.k_st = hqk * d; p.k_sb = T * p.k_st;
  p.v = v; p.v_st = hv * d; p.v_sb = T * p.v_st;
  p.decay = g; p.g_st = hv; p.g_sb = T * hv;
  p.beta = beta; p.beta_st = hv; p.beta_sb = T * hv;
  p.out = out; p.o_st = hv * d; p.o_sb = T * p.o_st;
  p.present = pool; p.pres_sk = d; p.pres_sh = d * d; p.pres_sb = hv * p.pres_sh;
  detail::ServingIndices& x = s.ix;
  x.N = static_cast<int64_t>(lens.size());
  x.T = T;
  x.packed = true;
  x.pool = true;
  x.slots = x.read_slots = slots;
  x.cu_seqlens.data = dcu;
  x.cu_seqlens.s0 = 1;
  x.state_indices.data = dslot;
  x.state_indices.s0 = 1;

  if (!detail::cuda::chunked_prefill_serving_supports(s)) {
    std::fprintf(stderr, "serving: not on the chunked path\n");
    return -1.0;
  }
  detail::Exec e;
  e.workspace_bytes = detail::cuda::chunked_prefill_serving_workspace_bytes_with(s, o);
  BENCH_CUDA(cudaMalloc(&e.workspace, e.workspace_bytes));
  const double t = median_event_ms(reps, "serving", [&] {
    return detail::cuda::chunked_prefill_serving_with(s, e, o);
  });
  for (void* ptr : {e.workspace, (void*)q, (void*)k, (void*)v, (void*)g, (void*)beta, (void*)out,
                    (void*)pool, (void*)dcu, (void*)dslot})
    cudaFree(ptr);
  return t;
}

// The serving rows beside the dense rows of the same tokens (library defaults, same run): 8
// sequences of 1024 .. 19456 tokens against dense 8 x 8192, and one sequence of 65536 tokens
// against dense 1 x 65536. `base`: the serving options (prefix segments, share) the command
// line sets; window > 0: chunks per window.
int print_varlen_row(int reps, int64_t window, detail::cuda::ChunkedServingOptions base) {
  base.split_state = false;  // the library's choice for gated rules
  base.max_window_chunks = window;
  const std::vector<int64_t> mixed{1024, 2048, 4096, 6144, 8192, 10240, 14336, 19456}, lone{65536};
  const double td = time_prefill(PrefillShape{16, 32, 8, 8192, 1.0}, false, PrefillPath::kChunked, reps);
  const double tv = time_serving(reps, mixed, base);  // the library's numbering
  detail::cuda::ChunkedServingOptions o = base;
  o.run_scan = false;
  const double tp = time_serving(reps, mixed, o);
  o = base;
  o.layout = Layout::kSequenceMajor;
  const double tc = time_serving(reps, mixed, o);
  const double td1 = time_prefill(PrefillShape{16, 32, 1, 65536, 1.6}, false, PrefillPath::kChunked, reps);
  const double t1 = time_serving(reps, lone, base);
  if (td < 0 || tv < 0 || tp < 0 || tc < 0 || td1 < 0 || t1 < 0) return 1;
  const std::string wnd = window > 0 ? " window " + std::to_string(window) : "";
  std::printf("serving varlen 8 seqs (1024..19456) = 65536 tokens, 16/32 heads, pool 16 f32 slots%s: "
              "%.3f ms (prep %.3f; sequence-major windows %.3f); dense 8x8192: %.3f ms; "
              "varlen/dense %.3f (target <= 1.10)\n",
              wnd.c_str(), tv, tp, tc, td, tv / td);
  std::printf("serving 1 seq of 65536 tokens, 16/32 heads, pool 16 f32 slots%s: %.3f ms; dense 1x65536: "
              "%.3f ms; serving/dense %.3f\n",
              wnd.c_str(), t1, td1, t1 / td1);
  return 0;
}

}  // namespace

int bench_chunked_prefill(int argc, char** argv) {
  int reps = 10;
  int64_t varlen_window = 0;  // --varlen-window N: chunks per window of the serving row
  int only = -1;              // --shape N: only the N-th shape of the table (no serving row)
  int states = 3;             // --state hi | hi+lo: only that state operand (bit 0: hi+lo, 1: hi)
  // --segments N (0: the rule), --window-mb N (records per window; 0: the library's bound),
  // --prefix 0|1 (never / always prefix segments; -1: the rule), --prefix-share X (0: the
  // library's), --p-warpgroup 0|1 (ChunkedOptions::p_warpgroup), --pair 0|1
  // (ChunkedOptions::pair_slabs), --whole-head 0|1 (ChunkedOptions::whole_head: slabs / whole
  // heads; by default the rule). The serving rows take --prefix, --prefix-share, --pair,
  // --whole-head and (with --prefix 1) --segments; their dense rows beside them run the
  // library's defaults.
  detail::cuda::ChunkedOptions o;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--prefix") == 0) o.prefix = std::atoi(argv[i + 1]) > 0 ? 1 : 0;
    if (std::strcmp(argv[i], "--prefix-share") == 0) o.prefix_share = std::max(0.0, std::atof(argv[i + 1]));
    if (std::strcmp(argv[i], "--p-warpgroup") == 0) o.p_warpgroup = std::atoi(argv[i + 1]) != 0;
    if (std::strcmp(argv[i], "--pair") == 0) o.pair_slabs = std::atoi(argv[i + 1]) != 0;
    if (std::strcmp(argv[i], "--whole-head") == 0) o.whole_head = std::atoi(argv[i + 1]) != 0 ? 1 : 0;
    if (std::strcmp(argv[i], "--reps") == 0) reps = std::max(1, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--segments") == 0) o.segments = std::max(0, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--varlen-window") == 0) varlen_window = std::max(0, std::atoi(argv[i + 1]));
    if (std::strcmp(argv[i], "--shape") == 0) only = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--window-mb") == 0) o.window_bytes = static_cast<size_t>(std::max(0, std::atoi(argv[i + 1]))) << 20;
    if (std::strcmp(argv[i], "--state") == 0) states = std::strcmp(argv[i + 1], "hi") == 0 ? 2 : 1;
  }
  detail::cuda::ChunkedServingOptions so;
  so.prefix = o.prefix;
  so.prefix_share = o.prefix_share;
  so.segments = o.segments;
  so.pair_slabs = o.pair_slabs;
  so.whole_head = o.whole_head;
  // --varlen-only: just the serving rows and the dense rows beside them.
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--varlen-only") == 0) return print_varlen_row(reps, varlen_window, so);
  const PrefillShape shapes[] = {{16, 32, 1, 8192, 0.30}, {16, 32, 8, 8192, 1.0},
                          {16, 32, 1, 65536, 1.6},  {16, 32, 32, 1024, 0.6},
                          {2, 8, 1, 65536, 0.5},    {16, 64, 1, 32768, 1.6}};
  std::printf("chunked prefill, gated_delta, d=128, bf16 q/k/v, f32 state, segments %s, prefix segments %s%s%s%s\n",
              o.segments > 0 ? std::to_string(o.segments).c_str() : "by rule",
              o.prefix < 0 ? "by rule" : (o.prefix > 0 ? "always" : "never"),
              o.prefix_share > 0 ? (" (share " + std::to_string(o.prefix_share) + ")").c_str() : "",
              o.p_warpgroup ? (o.pair_slabs ? "" : ", unpaired slabs") : ", no P warpgroup", o.whole_head < 0 ? "" : (o.whole_head > 0 ? ", whole-head final pass" : ", slab final pass"));
  std::printf("%-8s %-14s %-6s %10s %10s %10s %12s %9s %9s\n", "q,k/v", "BxT", "state", "ms",
              "prep ms", "target", "Mtok/s", "TFLOP/s", "vs tgt");
  int rc = 0;
  int index = -1;
  for (const PrefillShape& s : shapes) {
    if (++index != only && only >= 0) continue;
    // The prep does not depend on the state operand: timed once per shape.
    const double tp = time_prefill(s, true, PrefillPath::kChunkedPrepOnly, reps, o);
    for (bool split : {true, false}) {
      if ((states & (split ? 1 : 2)) == 0) continue;
      const double t = time_prefill(s, split, PrefillPath::kChunked, reps, o);
      if (t < 0 || tp < 0) { rc = 1; continue; }
      const double tokens = static_cast<double>(s.B * s.T);
      const double flops = 174e3 * tokens * s.hv;
      char hk[16], bt[24];
      std::snprintf(hk, sizeof hk, "%d/%d", s.hqk, s.hv);
      std::snprintf(bt, sizeof bt, "%lldx%lld", (long long)s.B, (long long)s.T);
      std::printf("%-8s %-14s %-6s %10.3f %10.3f %10.2f %12.1f %9.1f %8.2fx\n", hk, bt, split ? "hi+lo" : "hi",
                  t, tp, s.target_ms, tokens / t / 1e3, flops / t / 1e9, t / s.target_ms);
    }
  }
  if (only < 0 && print_varlen_row(reps, varlen_window, so) != 0) rc = 1;
  return rc;
}

}  // namespace linattn::bench
