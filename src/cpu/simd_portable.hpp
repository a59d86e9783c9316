// Portable vector operations for the kernel templates: GCC/Clang vector extensions of 4 floats,
// which lower to SSE2 on x86-64 and NEON on AArch64 (and to scalar code elsewhere). Include only
// from *_portable.cpp: the row conversions are the baseline ones of float_rows.hpp.
#pragma once

#include <cstdint>
#include <cstring>

#include "cpu/fast_exp.hpp"
#include "cpu/float_rows.hpp"

namespace linattn::detail::cpu {

struct VecPortable {
  typedef float R __attribute__((vector_size(16)));
  static constexpr int W = 4;
  static constexpr const char* kName = "portable";
  static constexpr int kRegisters = 16;  // vector registers the kernels may plan for

  static R load(const float* p) { R v; std::memcpy(&v, p, sizeof v); return v; }
  static void store(float* p, R v) { std::memcpy(p, &v, sizeof v); }
  static R set1(float x) { return R{x, x, x, x}; }
  static R zero() { return R{0.f, 0.f, 0.f, 0.f}; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R exp(R x) {
    return R{fast_exp(x[0]), fast_exp(x[1]), fast_exp(x[2]), fast_exp(x[3])};
  }
  static void load_row(const void* base, int64_t off, int64_t n, linattn_dtype t, float* dst) {
    cpu::load_row(base, off, n, t, dst);
  }
  static void store_row(void* base, int64_t off, int64_t n, linattn_dtype t, const float* src) {
    cpu::store_row(base, off, n, t, src);
  }
  // W values of storage type t at src as floats.
  static R load16(const void* src, linattn_dtype t) {
    float f[W];
    cpu::load_row(src, 0, W, t, f);
    return load(f);
  }
  // W values of v at dst as float16 or bfloat16 (t).
  static void store16(void* dst, linattn_dtype t, R v) {
    float f[W];
    store(f, v);
    cpu::store_row(dst, 0, W, t, f);
  }
  // No streaming stores here: plain ones.
  static void stream(float* dst, R v) { store(dst, v); }
  static void stream16(void* dst, linattn_dtype t, R v) { store16(dst, t, v); }
  static void stream_fence() {}
};

}  // namespace linattn::detail::cpu
