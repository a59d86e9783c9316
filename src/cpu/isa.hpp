// Instruction-set selection for the CPU kernels. Every kernel family has one implementation per
// instruction set (files *_portable.cpp, *_avx2.cpp, *_avx512.cpp); the dispatcher calls the one
// `active_isa()` names. The choice is made once per process from the CPU's features, and can be
// narrowed with the environment variable LINATTN_CPU_ISA=portable|avx2|avx512|avx512bf16 (a set
// the CPU or the build lacks falls back to the best one available). Tests force each path in
// turn with `force_isa`. avx512bf16 is AVX-512 with the AVX512_BF16 conversions: the kernels
// whose bfloat16 outputs and states cost measurably (the causal conv, the fused recurrent
// LinearAttention) have an instance for it, the chunked prefill runs its avx512 one.
#pragma once

namespace linattn::detail::cpu {

enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3 };

const char* isa_name(Isa isa);
// Compiled into this build and supported by this CPU (and OS).
bool isa_available(Isa isa);
// The best available set, or the one LINATTN_CPU_ISA asks for (read on first use).
Isa active_isa();
// Overrides the choice for the rest of the process (tests). Returns false, changing nothing,
// when `isa` is not available. Not thread-safe with concurrent calls into the library.
bool force_isa(Isa isa);

}  // namespace linattn::detail::cpu
