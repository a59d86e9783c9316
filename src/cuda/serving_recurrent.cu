// Token-recurrent LinearAttention for serving calls (docs/SERVING.md): the kernels of the dense
// path (recurrent_common.cuh) instantiated for LinearAttentionServing. Every block resolves its
// own sequence from the index views before touching memory, so the launch needs no host-side
// look at the indices (graph-capturable, no synchronisation) and every serving call runs here
// whatever its mix of prefill, decode, speculative steps and checkpoints: one launch per call.
//
// Kernel choice is the dense one with the sequence count in place of the batch: the decode
// kernel for small grids of single-token rows (unpacked, key-major, no checkpoints), the phased
// kernel with vector state accesses for key-major 64/128-wide heads, the general kernel for
// everything else (value-major pools, odd head dims, unaligned slot strides).
#include "cuda/recurrent_common.cuh"
#include "cuda/serving.hpp"

namespace linattn::detail::cuda {

Status linear_attention_recurrent_serving(const LinearAttentionServing& s, const Exec& e) {
  return recurrent::run(s, e);
}

}  // namespace linattn::detail::cuda
