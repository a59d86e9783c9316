// Copy bandwidth: each thread copies its slice of a buffer much larger than the last-level
// cache with memcpy (the C library's large-copy path: non-temporal stores on x86), best of
// several passes, read + write bytes counted. FMA peak: each thread runs independent chains of
// vector FMAs (more chains than FMA latency x pipes), widest vector the CPU supports.
#include "cpu_ceilings.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

namespace linattn::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Starts fn(i) on n threads at once and returns the wall time of the slowest.
template <class F>
double run_threads(int n, F fn) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  Clock::time_point t0;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      fn(i);
    });
  while (ready.load() < n) {
  }
  t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr int64_t kFmaIters = 20'000'000;
constexpr int kChains = 12;

#if defined(__x86_64__) || defined(_M_X64)
// Twelve accumulators as separate variables with distinct start values: an array may be kept
// in memory, and equal start values let the compiler merge the chains.
#define LINATTN_FMA12(F)                                                                   \
  a0 = F(a0, m, c); a1 = F(a1, m, c); a2 = F(a2, m, c); a3 = F(a3, m, c);                  \
  a4 = F(a4, m, c); a5 = F(a5, m, c); a6 = F(a6, m, c); a7 = F(a7, m, c);                  \
  a8 = F(a8, m, c); a9 = F(a9, m, c); a10 = F(a10, m, c); a11 = F(a11, m, c);

__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(0.10f), a1 = _mm256_set1_ps(0.11f), a2 = _mm256_set1_ps(0.12f),
         a3 = _mm256_set1_ps(0.13f), a4 = _mm256_set1_ps(0.14f), a5 = _mm256_set1_ps(0.15f),
         a6 = _mm256_set1_ps(0.16f), a7 = _mm256_set1_ps(0.17f), a8 = _mm256_set1_ps(0.18f),
         a9 = _mm256_set1_ps(0.19f), a10 = _mm256_set1_ps(0.20f), a11 = _mm256_set1_ps(0.21f);
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
    LINATTN_FMA12(_mm256_fmadd_ps)
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(0.10f), a1 = _mm512_set1_ps(0.11f), a2 = _mm512_set1_ps(0.12f),
         a3 = _mm512_set1_ps(0.13f), a4 = _mm512_set1_ps(0.14f), a5 = _mm512_set1_ps(0.15f),
         a6 = _mm512_set1_ps(0.16f), a7 = _mm512_set1_ps(0.17f), a8 = _mm512_set1_ps(0.18f),
         a9 = _mm512_set1_ps(0.19f), a10 = _mm512_set1_ps(0.20f), a11 = _mm512_set1_ps(0.21f);
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
    LINATTN_FMA12(_mm512_fmadd_ps)
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
  return _mm512_reduce_add_ps(s);
}
#endif

float fma_loop_scalar(int64_t iters) {
  float acc[kChains][4];
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < 4; ++l) acc[c][l] = 0.001f * c;
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c)
      for (int l = 0; l < 4; ++l) acc[c][l] = acc[c][l] * 0.999999f + 1e-7f;
  float s = 0;
  for (int c = 0; c < kChains; ++c) s += acc[c][0];
  return s;
}

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t p = line.find(':');
      if (p != std::string::npos) return line.substr(p + 2);
    }
  }
  return "unknown";
}

}  // namespace

CpuCeilings measure_cpu_ceilings(int threads, int copy_mib) {
  CpuCeilings c;
  c.cpu_model = cpu_model_name();

  // Copy bandwidth.
  const size_t bytes = static_cast<size_t>(copy_mib) << 20;
  std::vector<char> src(bytes), dst(bytes);
  for (size_t i = 0; i < bytes; i += 64) src[i] = static_cast<char>(i * 7);
  std::memset(dst.data(), 1, bytes);  // fault the pages in before timing
  const size_t slice = (bytes / threads) & ~static_cast<size_t>(4095);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const double t = run_threads(threads, [&](int i) {
      std::memcpy(dst.data() + i * slice, src.data() + i * slice, slice);
    });
    best = std::min(best, t);
  }
  c.copy_gbs = 2.0 * static_cast<double>(slice) * threads / best / 1e9;

  // FMA peak.
  int lanes = 4;
  float (*loop)(int64_t) = fma_loop_scalar;
  c.fma_isa = "portable (4 lanes, mul+add)";
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    loop = fma_loop_avx512;
    lanes = 16;
    c.fma_isa = "avx512 (16 lanes)";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    loop = fma_loop_avx2;
    lanes = 8;
    c.fma_isa = "avx2 (8 lanes)";
  }
#endif
  std::atomic<float> sink{0};
  double tbest = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    const double t = run_threads(threads, [&](int) { sink.store(loop(kFmaIters)); });
    tbest = std::min(tbest, t);
  }
  c.fma_gflops = 2.0 * kFmaIters * kChains * lanes * threads / tbest / 1e9;
  return c;
}

}  // namespace linattn::bench
