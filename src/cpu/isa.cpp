#include "cpu/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace linattn::detail::cpu {
namespace {

bool cpu_has(Isa isa) {
#if defined(LINATTN_X86) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kPortable: return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    case Isa::kAvx512Bf16:
      return cpu_has(Isa::kAvx512) && __builtin_cpu_supports("avx512bf16");
  }
  return false;
#else
  return isa == Isa::kPortable;
#endif
}

Isa best_isa() {
  if (cpu_has(Isa::kAvx512Bf16)) return Isa::kAvx512Bf16;
  if (cpu_has(Isa::kAvx512)) return Isa::kAvx512;
  if (cpu_has(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kPortable;
}

Isa initial_isa() {
  Isa best = best_isa();
  const char* env = std::getenv("LINATTN_CPU_ISA");
  if (env == nullptr) return best;
  Isa want = best;
  if (std::strcmp(env, "portable") == 0 || std::strcmp(env, "scalar") == 0) want = Isa::kPortable;
  else if (std::strcmp(env, "avx2") == 0) want = Isa::kAvx2;
  else if (std::strcmp(env, "avx512") == 0) want = Isa::kAvx512;
  else if (std::strcmp(env, "avx512bf16") == 0) want = Isa::kAvx512Bf16;
  // Never above what the CPU can run; an unknown name keeps the best set.
  return static_cast<int>(want) <= static_cast<int>(best) && cpu_has(want) ? want : best;
}

std::atomic<int>& chosen() {
  static std::atomic<int> isa{static_cast<int>(initial_isa())};
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return "portable";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512bf16";
  }
  return "unknown";
}

bool isa_available(Isa isa) { return cpu_has(isa); }

Isa active_isa() { return static_cast<Isa>(chosen().load(std::memory_order_relaxed)); }

bool force_isa(Isa isa) {
  if (!cpu_has(isa)) return false;
  chosen().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

}  // namespace linattn::detail::cpu
