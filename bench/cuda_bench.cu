// `linattn bench --device cuda`: times the CUDA kernels on the reference shapes (Qwen3.5 layer:
// H_q = n_k = 16, H_kv = 32, d_k = d_v = 128, conv 8192 channels, width 4) and reports time,
// effective bandwidth and its share of the measured device copy bandwidth.
//
// Method: the copy bandwidth is measured first (1 GiB device-to-device, by cudaMemcpy and by a
// 16-byte copy kernel, the better one counts; bytes read + written). Inputs are random (never zeros) and rotated across enough independent sets
// to exceed 4x the L2 cache, so no timed call finds its data in L2 from the previous one. Each
// sample is a CUDA graph of several calls (launch gaps out of the number), timed with events;
// the figure is the median over samples after a warm-up replay.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench.hpp"
#include "core/backend.hpp"
#include "cuda/linear_attention.hpp"

namespace linattn::bench {
namespace {

using detail::CausalConvParams;
using detail::Exec;
using detail::LinearAttentionParams;

#define BENCH_CUDA(expr)                                                              \
  do {                                                                                \
    const cudaError_t _e = (expr);                                                    \
    if (_e != cudaSuccess) {                                                          \
      std::fprintf(stderr, "bench: %s: %s\n", #expr, cudaGetErrorString(_e));         \
      std::exit(1);                                                                   \
    }                                                                                 \
  } while (0)

size_t esize(linattn_dtype t) { return t == LINATTN_FLOAT32 ? 4 : 2; }

__device__ __forceinline__ uint32_t hash32(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return static_cast<uint32_t>(x);
}

// Uniform values in [lo, hi) (never all zero), stored in dtype t.
__global__ void fill_kernel(void* p, int64_t n, linattn_dtype t, float lo, float hi, uint64_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float u = (hash32(i * 0x9e3779b97f4a7c15ull + seed) >> 8) * (1.f / 16777216.f);
    const float x = lo + (hi - lo) * u;
    if (t == LINATTN_FLOAT32) static_cast<float*>(p)[i] = x;
    else if (t == LINATTN_FLOAT16) static_cast<__half*>(p)[i] = __float2half_rn(x);
    else static_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(x);
  }
}

struct Buffers {
  std::vector<void*> ptrs;
  ~Buffers() {
    for (void* p : ptrs) cudaFree(p);
  }
  void* make(int64_t n, linattn_dtype t, float lo, float hi) {
    void* p = nullptr;
    BENCH_CUDA(cudaMalloc(&p, std::max<int64_t>(n, 1) * esize(t)));
    static uint64_t seed = 12345;
    fill_kernel<<<1024, 256>>>(p, n, t, lo, hi, seed += 7919);
    BENCH_CUDA(cudaGetLastError());
    ptrs.push_back(p);
    return p;
  }
};

struct Result {
  std::string name;
  double us = 0, bytes = 0, gbps = 0, pct = 0;
  std::string note;
};

// Median time in microseconds of one call: graphs of `calls` calls (call(i) runs input set
// i % sets), `samples` replays after one warm-up.
double time_calls(cudaStream_t s, int calls, int samples, const std::function<void(int)>& call) {
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  BENCH_CUDA(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
  for (int i = 0; i < calls; ++i) call(i);
  BENCH_CUDA(cudaStreamEndCapture(s, &graph));
  BENCH_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  BENCH_CUDA(cudaEventCreate(&a));
  BENCH_CUDA(cudaEventCreate(&b));
  BENCH_CUDA(cudaGraphLaunch(exec, s));
  BENCH_CUDA(cudaStreamSynchronize(s));
  std::vector<double> t;
  for (int r = 0; r < samples; ++r) {
    BENCH_CUDA(cudaEventRecord(a, s));
    BENCH_CUDA(cudaGraphLaunch(exec, s));
    BENCH_CUDA(cudaEventRecord(b, s));
    BENCH_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    BENCH_CUDA(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1e3 / calls);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// A plain streaming copy kernel (16-byte accesses, grid-stride): the runtime's device copy
// does not always reach the memory's rate, and the floor should be the best copy we can make.
__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

// The floor rows' kernels: each thread loads its kU 16-byte vectors (a block's vectors are
// contiguous, 4 KB per instruction round at 256 threads), then stores them, so every load of
// the call is in flight at once, as in the conv update kernel. With kInPlace the stores go
// back to the addresses read (as the in-place state), words swapped so that they are real
// stores; with kPdl the kernel waits for the previous grid before its loads and lets the next
// one launch at once (programmatic dependent launch). No __restrict__: src may be dst.
template <int kU, bool kInPlace, bool kPdl>
__global__ void copy_floor_kernel(const uint4* src, uint4* dst, int64_t n) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (kPdl) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;");
  }
#endif
  const int64_t i0 = static_cast<int64_t>(blockIdx.x) * blockDim.x * kU + threadIdx.x;
  uint4 v[kU];
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int64_t i = i0 + static_cast<int64_t>(u) * blockDim.x;
    if (i < n) v[u] = src[i];
  }
#pragma unroll
  for (int u = 0; u < kU; ++u) {
    const int64_t i = i0 + static_cast<int64_t>(u) * blockDim.x;
    if (i < n) dst[i] = kInPlace ? make_uint4(v[u].y, v[u].x, v[u].w, v[u].z) : v[u];
  }
}

// Bytes read + written per second by the better of cudaMemcpy D2D and the copy kernel.
double copy_bandwidth(cudaStream_t s, double* memcpy_bw, double* kernel_bw) {
  const size_t bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  BENCH_CUDA(cudaMalloc(&src, bytes));
  BENCH_CUDA(cudaMalloc(&dst, bytes));
  fill_kernel<<<1024, 256>>>(src, bytes / 4, LINATTN_FLOAT32, -1.f, 1.f, 1);
  BENCH_CUDA(cudaDeviceSynchronize());
  const double us = time_calls(s, 2, 10, [&](int) {
    BENCH_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
  });
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  const double us_kernel = time_calls(s, 2, 10, [&](int) {
    copy_kernel<<<sms * 8, 512, 0, s>>>(static_cast<const uint4*>(src), static_cast<uint4*>(dst),
                                        static_cast<int64_t>(bytes / 16));
  });
  cudaFree(src);
  cudaFree(dst);
  *memcpy_bw = 2.0 * bytes / (us * 1e-6);
  *kernel_bw = 2.0 * bytes / (us_kernel * 1e-6);
  return std::max(*memcpy_bw, *kernel_bw);
}

// Independent input sets needed so that the data of one call is evicted before its next turn.
int sets_for(double set_bytes, int64_t l2) {
  const double want = 4.0 * l2;
  return static_cast<int>(std::min(64.0, std::max(1.0, std::ceil(want / set_bytes))));
}

// What the hardware allows for a kernel as short as the conv update: plain 16-byte copies
// moving the update's bytes (input + state read, output + state written: `half` bytes each
// way), rotated over the same number of sets and event-timed in graphs like the conv rows.
// kind 0: the grid-stride copy kernel of the bandwidth reference (SMs x 8 blocks of 512);
// 1: four vectors per thread, one wave; 2: the same reading and writing the same addresses;
// 3: kind 1 with programmatic dependent launch (the next call's launch overlaps this one).
Result bench_copy_floor(const char* name, int64_t half, int kind, cudaStream_t s, int64_t l2, int samples) {
  const int64_t n = half / 16;
  const int sets = sets_for(2.0 * half, l2);
  Buffers buf;
  std::vector<uint4*> src(sets), dst(sets);
  for (int i = 0; i < sets; ++i) {
    src[i] = static_cast<uint4*>(buf.make(half / 4, LINATTN_FLOAT32, -1.f, 1.f));
    dst[i] = static_cast<uint4*>(buf.make(half / 4, LINATTN_FLOAT32, -1.f, 1.f));
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  int sms = 0;
  BENCH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  constexpr int kU = 4, kThreads = 256;
  const unsigned blocks = static_cast<unsigned>((n + kU * kThreads - 1) / (kU * kThreads));
  const int calls = std::max(sets, 8);
  Result r;
  r.name = name;
  r.bytes = 2.0 * half;
  r.us = time_calls(s, calls, samples, [&](int i) {
    uint4* a = src[i % sets];
    uint4* b = dst[i % sets];
    if (kind == 0) {
      copy_kernel<<<sms * 8, 512, 0, s>>>(a, b, n);
    } else if (kind == 1) {
      copy_floor_kernel<kU, false, false><<<blocks, kThreads, 0, s>>>(a, b, n);
    } else if (kind == 2) {
      copy_floor_kernel<kU, true, false><<<blocks, kThreads, 0, s>>>(a, a, n);
    } else {
      cudaLaunchConfig_t cfg = {};
      cfg.gridDim = dim3(blocks);
      cfg.blockDim = dim3(kThreads);
      cfg.stream = s;
      cudaLaunchAttribute attr[1];
      attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[0].val.programmaticStreamSerializationAllowed = 1;
      cfg.attrs = attr;
      cfg.numAttrs = 1;
      BENCH_CUDA(cudaLaunchKernelEx(&cfg, copy_floor_kernel<kU, false, true>, static_cast<const uint4*>(a), b, n));
    }
    BENCH_CUDA(cudaGetLastError());
  });
  return r;
}

struct Shape {
  int Hq = 16, Hk = 16, Hkv = 32, dk = 128, dv = 128;
};

Result bench_linear_attention(const char* name, int64_t B, int64_t T, linattn_dtype state,
                              bool recurrent_only, cudaStream_t s, int64_t l2, int samples) {
  const Shape sh;
  const linattn_dtype act = LINATTN_BFLOAT16;
  const int64_t q_n = B * T * sh.Hq * sh.dk, k_n = B * T * sh.Hk * sh.dk;
  const int64_t v_n = B * T * sh.Hkv * sh.dv, o_n = B * T * std::max(sh.Hq, sh.Hkv) * sh.dv;
  const int64_t g_n = B * T * sh.Hkv, s_n = B * sh.Hkv * sh.dk * sh.dv;
  const double io_bytes = (q_n + k_n + v_n + o_n + 2 * g_n) * esize(act);
  const double bytes = io_bytes + 2.0 * s_n * esize(state);
  const int sets = sets_for(bytes, l2);
  Buffers buf;
  std::vector<LinearAttentionParams> ps;
  const float kscale = 1.f / std::sqrt(static_cast<float>(sh.dk));
  for (int i = 0; i < sets; ++i) {
    LinearAttentionParams p;
    p.B = B; p.T = T; p.Hq = sh.Hq; p.Hk = sh.Hk; p.Hkv = sh.Hkv; p.Hout = std::max(sh.Hq, sh.Hkv);
    p.dk = sh.dk; p.dv = sh.dv;
    p.rule = LINATTN_RULE_GATED_DELTA; p.gated = true; p.delta = true;
    p.scale = kscale;
    p.act_dtype = act; p.past_dtype = state; p.present_dtype = state;
    p.q = buf.make(q_n, act, -kscale, kscale); p.q_st = sh.Hq * sh.dk; p.q_sb = T * p.q_st;
    p.k = buf.make(k_n, act, -kscale, kscale); p.k_st = sh.Hk * sh.dk; p.k_sb = T * p.k_st;
    p.v = buf.make(v_n, act, -1.f, 1.f); p.v_st = sh.Hkv * sh.dv; p.v_sb = T * p.v_st;
    p.decay = buf.make(g_n, act, -0.1f, -0.001f); p.g_st = sh.Hkv; p.g_sb = T * p.g_st;
    p.beta = buf.make(g_n, act, 0.05f, 0.95f); p.beta_st = sh.Hkv; p.beta_sb = T * p.beta_st;
    p.out = buf.make(o_n, act, -1.f, 1.f); p.o_st = p.Hout * sh.dv; p.o_sb = T * p.o_st;
    void* st = buf.make(s_n, state, -0.05f, 0.05f);
    p.past = st; p.present = st; p.in_place = true;  // serving updates the state in place
    p.past_sk = p.pres_sk = sh.dv;
    p.past_sh = p.pres_sh = int64_t{sh.dk} * sh.dv;
    p.past_sb = p.pres_sb = int64_t{sh.Hkv} * sh.dk * sh.dv;
    ps.push_back(p);
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  Exec e;
  e.stream = s;
  const int calls = T > 1 ? 1 : std::max(sets, 8);
  const double us = time_calls(s, calls, T > 1 ? std::max(3, samples / 10) : samples, [&](int i) {
    const LinearAttentionParams& p = ps[i % sets];
    const detail::Status st = recurrent_only ? detail::cuda::linear_attention_recurrent(p, e)
                                             : detail::cuda::linear_attention(p, e);
    if (!st.ok()) {
      std::fprintf(stderr, "bench %s: %s\n", name, st.message().c_str());
      std::exit(1);
    }
  });
  Result r;
  r.name = name;
  r.us = us;
  r.bytes = bytes;
  return r;
}

// A decode batch of B one-token sequences through a pool of `slots` slots: a fresh shuffle of
// the slots (Fisher-Yates with xorshift, carried across calls in `order` and `rng`), the first B
// uploaded as int32 state_indices (owned by `buf`).
detail::ServingIndices shuffled_pool(Buffers& buf, int64_t B, int64_t slots,
                                     std::vector<int32_t>& order, uint64_t& rng) {
  for (int64_t j = slots - 1; j > 0; --j) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    std::swap(order[j], order[rng % (j + 1)]);
  }
  void* idx = nullptr;
  BENCH_CUDA(cudaMalloc(&idx, B * sizeof(int32_t)));
  BENCH_CUDA(cudaMemcpy(idx, order.data(), B * sizeof(int32_t), cudaMemcpyHostToDevice));
  buf.ptrs.push_back(idx);
  detail::ServingIndices x;
  x.N = B; x.T = 1; x.pool = true; x.slots = slots; x.read_slots = slots;
  x.state_indices.data = idx; x.state_indices.s0 = 1;
  return x;
}

// Times `run(set)` over the rotated input sets like every other row; a failed call ends the
// benchmark with its message.
template <class Run>
Result time_serving(const char* name, double bytes, int sets, int samples, cudaStream_t s, Run run) {
  const int calls = std::max(sets, 8);
  Exec e;
  e.stream = s;
  Result r;
  r.name = name;
  r.bytes = bytes;
  r.us = time_calls(s, calls, samples, [&](int i) {
    const detail::Status st = run(i % sets, e);
    if (!st.ok()) {
      std::fprintf(stderr, "bench %s: %s\n", name, st.message().c_str());
      std::exit(1);
    }
  });
  return r;
}

// Serving decode through a state pool (docs/SERVING.md): B sequences, one token each, updating
// their slots in place in a pool of 2B slots through shuffled state_indices (the vLLM layout);
// `fused` adds the in-call q/k L2 norm and gating from raw projections. Bytes as the dense
// decode rows (the slots touched, read and written, plus q, k, v, decay, beta, output).
Result bench_decode_pool(const char* name, int64_t B, linattn_dtype state, bool fused,
                         cudaStream_t s, int64_t l2, int samples) {
  const Shape sh;
  const linattn_dtype act = LINATTN_BFLOAT16;
  const int64_t q_n = B * sh.Hq * sh.dk, k_n = B * sh.Hk * sh.dk, v_n = B * sh.Hkv * sh.dv;
  const int64_t o_n = B * std::max(sh.Hq, sh.Hkv) * sh.dv, g_n = B * sh.Hkv;
  const int64_t block = int64_t{sh.Hkv} * sh.dk * sh.dv, slots = 2 * B;
  const double bytes = (q_n + k_n + v_n + o_n + 2 * g_n) * esize(act) + 2.0 * B * block * esize(state);
  const int sets = sets_for(bytes, l2);
  Buffers buf;
  std::vector<detail::LinearAttentionServing> ss;
  const float kscale = 1.f / std::sqrt(static_cast<float>(sh.dk));
  std::vector<int32_t> order(slots);
  for (int64_t i = 0; i < slots; ++i) order[i] = static_cast<int32_t>(i);
  uint64_t rng = 0x2545f4914f6cdd1dull;
  for (int i = 0; i < sets; ++i) {
    detail::LinearAttentionServing v;
    LinearAttentionParams& p = v.p;
    p.B = B; p.T = 1; p.Hq = sh.Hq; p.Hk = sh.Hk; p.Hkv = sh.Hkv; p.Hout = std::max(sh.Hq, sh.Hkv);
    p.dk = sh.dk; p.dv = sh.dv;
    p.rule = LINATTN_RULE_GATED_DELTA; p.gated = true; p.delta = true;
    p.scale = kscale;
    p.act_dtype = act; p.past_dtype = state; p.present_dtype = state;
    const float qk = fused ? 1.f : kscale;  // raw projections with the fused L2 norm
    p.q = buf.make(q_n, act, -qk, qk); p.q_st = sh.Hq * sh.dk; p.q_sb = p.q_st;
    p.k = buf.make(k_n, act, -qk, qk); p.k_st = sh.Hk * sh.dk; p.k_sb = p.k_st;
    p.v = buf.make(v_n, act, -1.f, 1.f); p.v_st = sh.Hkv * sh.dv; p.v_sb = p.v_st;
    // Raw a and b with fused gating, the gates themselves otherwise.
    p.decay = fused ? buf.make(g_n, act, -2.f, 2.f) : buf.make(g_n, act, -0.1f, -0.001f);
    p.g_st = sh.Hkv; p.g_sb = p.g_st;
    p.beta = fused ? buf.make(g_n, act, -2.f, 2.f) : buf.make(g_n, act, 0.05f, 0.95f);
    p.beta_st = sh.Hkv; p.beta_sb = p.beta_st;
    p.out = buf.make(o_n, act, -1.f, 1.f); p.o_st = p.Hout * sh.dv; p.o_sb = p.o_st;
    p.present = buf.make(slots * block, state, -0.05f, 0.05f);  // the pool, read in place
    p.pres_sk = sh.dv;
    p.pres_sh = int64_t{sh.dk} * sh.dv;
    p.pres_sb = block;
    v.ix = shuffled_pool(buf, B, slots, order, rng);
    if (fused) {
      v.qk_l2norm = true;
      v.fused_gating = true;
      v.A_log = buf.make(sh.Hkv, LINATTN_FLOAT32, -1.f, 1.f);
      v.dt_bias = buf.make(sh.Hkv, LINATTN_FLOAT32, -0.5f, 0.5f);
      v.A_log_s = v.dt_bias_s = 1;
    }
    ss.push_back(v);
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  return time_serving(name, bytes, sets, samples, s, [&](int i, const Exec& e) {
    return detail::cuda::linear_attention_serving(ss[i], e);
  });
}

// State in place (present aliases past, as serving engines run it) unless separate_state:
// then past and present are distinct buffers, the operator's plain form.
Result bench_conv(const char* name, int64_t B, int64_t C, int64_t L, int K, bool channels_last,
                  bool count_state, cudaStream_t s, int64_t l2, int samples,
                  bool separate_state = false) {
  const linattn_dtype act = LINATTN_BFLOAT16, state = LINATTN_BFLOAT16;
  const int64_t x_n = B * C * L, s_n = B * C * (K - 1);
  const double io = 2.0 * x_n * esize(act);
  const double bytes = io + (count_state ? 2.0 * s_n * esize(state) : 0.0);
  const double all_bytes = io + 2.0 * s_n * esize(state) + C * (K + 1) * esize(act) +
                           (separate_state ? s_n * esize(state) : 0.0);
  const int sets = sets_for(all_bytes, l2);
  Buffers buf;
  std::vector<CausalConvParams> ps;
  for (int i = 0; i < sets; ++i) {
    CausalConvParams p;
    p.B = B; p.C = C; p.L = L; p.K = K; p.silu = true; p.channels_last = channels_last;
    p.act_dtype = act; p.past_dtype = state; p.present_dtype = state;
    p.x = buf.make(x_n, act, -2.f, 2.f);
    p.y = buf.make(x_n, act, -2.f, 2.f);
    if (channels_last) {
      p.x_sb = p.y_sb = L * C; p.x_sl = p.y_sl = C; p.x_sc = p.y_sc = 1;
    } else {
      p.x_sb = p.y_sb = C * L; p.x_sc = p.y_sc = L; p.x_sl = p.y_sl = 1;
    }
    p.w = buf.make(C * K, act, -0.5f, 0.5f); p.w_sc = K; p.w_sk = 1;
    p.bias = buf.make(C, act, -0.1f, 0.1f); p.bias_sc = 1;
    void* st = buf.make(s_n, state, -1.f, 1.f);
    p.past = st;
    p.present = separate_state ? buf.make(s_n, state, -1.f, 1.f) : st;
    p.in_place = !separate_state;
    p.past_sb = p.pres_sb = C * (K - 1); p.past_sc = p.pres_sc = K - 1;
    ps.push_back(p);
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  Exec e;
  e.stream = s;
  const int calls = L > 1 ? std::max(2, sets) : std::max(sets, 8);
  const double us = time_calls(s, calls, samples, [&](int i) {
    const detail::Status st = detail::cuda::causal_conv(ps[i % sets], e);
    if (!st.ok()) {
      std::fprintf(stderr, "bench %s: %s\n", name, st.message().c_str());
      std::exit(1);
    }
  });
  Result r;
  r.name = name;
  r.us = us;
  r.bytes = bytes;
  return r;
}

// Serving conv update through a state pool: B sequences, one token each, updating their slots
// in place in a pool of 2B slots through shuffled state_indices (the serving kernel). Bytes as
// the dense update row: input + output + the slots touched, read and written.
Result bench_conv_pool(const char* name, int64_t B, int64_t C, int K, cudaStream_t s, int64_t l2,
                       int samples) {
  const linattn_dtype act = LINATTN_BFLOAT16, state = LINATTN_BFLOAT16;
  const int64_t x_n = B * C, block = C * (K - 1), slots = 2 * B;
  const double bytes = 2.0 * x_n * esize(act) + 2.0 * B * block * esize(state);
  const double all_bytes = bytes + (slots - B) * block * esize(state) + C * (K + 1) * esize(act);
  const int sets = sets_for(all_bytes, l2);
  Buffers buf;
  std::vector<detail::CausalConvServing> ss;
  std::vector<int32_t> order(slots);
  for (int64_t i = 0; i < slots; ++i) order[i] = static_cast<int32_t>(i);
  uint64_t rng = 0x9e3779b97f4a7c15ull;
  for (int i = 0; i < sets; ++i) {
    detail::CausalConvServing v;
    CausalConvParams& p = v.p;
    p.B = B; p.C = C; p.L = 1; p.K = K; p.silu = true;
    p.act_dtype = act; p.past_dtype = state; p.present_dtype = state;
    p.x = buf.make(x_n, act, -2.f, 2.f);
    p.y = buf.make(x_n, act, -2.f, 2.f);
    p.x_sb = p.y_sb = C; p.x_sc = p.y_sc = 1; p.x_sl = p.y_sl = 1;
    p.w = buf.make(C * K, act, -0.5f, 0.5f); p.w_sc = K; p.w_sk = 1;
    p.bias = buf.make(C, act, -0.1f, 0.1f); p.bias_sc = 1;
    p.present = buf.make(slots * block, state, -1.f, 1.f);  // the pool, read in place
    p.pres_sb = block; p.pres_sc = K - 1;
    v.ix = shuffled_pool(buf, B, slots, order, rng);
    ss.push_back(v);
  }
  BENCH_CUDA(cudaDeviceSynchronize());
  return time_serving(name, bytes, sets, samples, s, [&](int i, const Exec& e) {
    return detail::cuda::causal_conv_serving(ss[i], e);
  });
}

void usage() {
  std::fprintf(stderr,
               "usage: linattn bench --device cuda [--json FILE] [--samples N] [--quick]\n"
               "  --json FILE   also write the results as JSON\n"
               "  --samples N   timed graph replays per case (default 30)\n"
               "  --quick       skip the B=2048 decode and the 4096-token recurrent prefill\n");
}

}  // namespace

int bench_main_cuda(int argc, char** argv) {
  const char* json = nullptr;
  int samples = 30;
  bool quick = false;
  for (int i = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    else if (!std::strcmp(argv[i], "--samples") && i + 1 < argc) samples = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) { usage(); return 0; }
    else if (i == 0 && argv[i][0] != '-') continue;  // program or subcommand name
    else { std::fprintf(stderr, "linattn bench: unknown option %s\n", argv[i]); usage(); return 2; }
  }
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::fprintf(stderr, "linattn bench: no CUDA device visible\n");
    return 2;
  }
  cudaDeviceProp prop;
  BENCH_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t s;
  BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const int64_t l2 = prop.l2CacheSize;
  double memcpy_bw = 0, kernel_bw = 0;
  const double copy_bw = copy_bandwidth(s, &memcpy_bw, &kernel_bw);
  std::printf("device: %s, %d SMs, L2 %.0f MB; copy bandwidth (read + write, 1 GiB): "
              "cudaMemcpy %.0f GB/s, copy kernel %.0f GB/s; reference %.0f GB/s\n",
              prop.name, prop.multiProcessorCount, l2 / 1e6, memcpy_bw / 1e9, kernel_bw / 1e9,
              copy_bw / 1e9);

  std::vector<Result> rs;
  for (int64_t B : {1, 64, 256, 2048}) {
    if (quick && B == 2048) continue;
    for (linattn_dtype st : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
      const std::string name = "decode B=" + std::to_string(B) + " state " +
                               (st == LINATTN_FLOAT32 ? "f32" : "bf16");
      rs.push_back(bench_linear_attention(name.c_str(), B, 1, st, true, s, l2, samples));
    }
  }
  for (bool fused : {false, true}) {
    for (int64_t B : {64, 256}) {
      for (linattn_dtype st : {LINATTN_FLOAT32, LINATTN_BFLOAT16}) {
        const std::string name = std::string("decode pool") + (fused ? "+l2norm+gating" : "") +
                                 " B=" + std::to_string(B) + " " + (st == LINATTN_FLOAT32 ? "f32" : "bf16");
        rs.push_back(bench_decode_pool(name.c_str(), B, st, fused, s, l2, samples));
      }
    }
  }
  if (!quick) {
    rs.push_back(bench_linear_attention("recurrent prefill B=1 T=4096 f32 state", 1, 4096,
                                        LINATTN_FLOAT32, true, s, l2, samples));
    rs.back().note = "token-recurrent kernel";
  }
  {
    // The conv update's bytes each way: input + state (B = 256, C = 8192, k = 4, bf16).
    const int64_t half = int64_t{256} * 8192 * 2 * (1 + 3);
    rs.push_back(bench_copy_floor("copy floor 16.8+16.8 MB, grid-stride", half, 0, s, l2, samples));
    rs.push_back(bench_copy_floor("copy floor 16.8+16.8 MB, 4 vectors/thread", half, 1, s, l2, samples));
    rs.push_back(bench_copy_floor("copy floor 16.8+16.8 MB, in place", half, 2, s, l2, samples));
    rs.push_back(bench_copy_floor("copy floor 16.8+16.8 MB, 4 vectors, PDL", half, 3, s, l2, samples));
  }
  rs.push_back(bench_conv("conv update B=256 C=8192 k=4", 256, 8192, 1, 4, false, true, s, l2, samples));
  rs.push_back(bench_conv("conv update B=256 C=8192 k=4 past!=present", 256, 8192, 1, 4, false, true, s,
                          l2, samples, true));
  rs.push_back(bench_conv_pool("conv update pool B=256 C=8192 k=4", 256, 8192, 4, s, l2, samples));
  rs.push_back(bench_conv("conv update B=256 C=8192 k=4 ch-last", 256, 8192, 1, 4, true, true, s, l2, samples));
  rs.push_back(bench_conv("conv prefill B=8 L=4096 C=8192", 8, 8192, 4096, 4, false, false, s, l2, samples));
  rs.push_back(bench_conv("conv prefill B=8 L=4096 C=8192 ch-last", 8, 8192, 4096, 4, true, false, s, l2, samples));

  std::printf("\n%-42s %12s %10s %9s\n", "case (bf16 activations)", "time us", "GB/s", "% copy");
  for (Result& r : rs) {
    r.gbps = r.bytes / (r.us * 1e-6) / 1e9;
    r.pct = 100.0 * r.bytes / (r.us * 1e-6) / copy_bw;
    std::printf("%-42s %12.2f %10.0f %8.1f%%\n", r.name.c_str(), r.us, r.gbps, r.pct);
  }
  std::printf("bytes: decode = state read + write + q, k, v, decay, beta, output; conv update = "
              "input + output + state read + write; conv prefill = input + output\n");
  if (json) {
    FILE* f = std::fopen(json, "w");
    if (!f) {
      std::fprintf(stderr, "linattn bench: cannot write %s\n", json);
      return 1;
    }
    std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"copy_bandwidth_gbps\": %.1f,\n"
                    "  \"memcpy_gbps\": %.1f,\n  \"copy_kernel_gbps\": %.1f,\n  \"cases\": [\n",
                 prop.name, copy_bw / 1e9, memcpy_bw / 1e9, kernel_bw / 1e9);
    for (size_t i = 0; i < rs.size(); ++i) {
      std::fprintf(f, "    {\"name\": \"%s\", \"time_us\": %.3f, \"bytes\": %.0f, \"gbps\": %.1f, "
                      "\"pct_copy\": %.2f}%s\n",
                   rs[i].name.c_str(), rs[i].us, rs[i].bytes, rs[i].gbps, rs[i].pct,
                   i + 1 < rs.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
  cudaStreamDestroy(s);
  return 0;
}

}  // namespace linattn::bench
