// When the CPU kernels write their outputs with streaming (non-temporal) stores.
#pragma once

#include <cstdint>

namespace linattn::detail::cpu {

// A call whose output is at least this large writes it with streaming stores: the output lines
// would otherwise be read before they are written, and an output that large does not stay in
// the cores' L2 for the next operator anyway. Measured on a 2-core AVX-512 Xeon (2 MiB L2 per
// core, docs/PERFORMANCE.md), LinearAttention gated_delta 16/32 heads d = 128: T = 512 (8 MiB
// of float32 output) 9-13% faster, T = 2048 10%, T = 8192 4-11%. Smaller outputs keep plain
// stores and stay in cache.
constexpr int64_t kStreamOutputBytes = int64_t{4} << 20;

}  // namespace linattn::detail::cpu
