// Serving calls as device kernels see them: the checked call (tensors, pools, options) plus the
// index tensors as raw views whose CONTENTS have not been read. Plain data, includable from
// CUDA. Host backends read the indices during validation (serving_check.cpp, resolve_plan);
// the CUDA backend cannot without a host-device synchronisation, so every kernel resolves its
// own sequence with resolve_sequence() below, which applies exactly the rules of
// resolve_plan(), and skips a sequence that breaks one, raising the call's error flag instead
// of failing the call (docs/SERVING.md "Index errors").
#pragma once

#include <cstdint>

#include "core/params.hpp"

namespace linattn::detail {

// An int32 or int64 index tensor of rank 1 or 2 (data == nullptr: absent).
struct IndexRef {
  const void* data = nullptr;
  bool i64 = false;
  int64_t s0 = 0, s1 = 0;  // strides in elements
  LINATTN_HD bool present() const { return data != nullptr; }
  LINATTN_HD int64_t at(int64_t i, int64_t j = 0) const {
    const int64_t off = i * s0 + j * s1;
    return i64 ? static_cast<const int64_t*>(data)[off]
               : static_cast<int64_t>(static_cast<const int32_t*>(data)[off]);
  }
};

// Everything the index tensors of one call mean, before their contents are read.
struct ServingIndices {
  int64_t N = 0;            // sequences
  int64_t T = 0;            // tokens per batch row of the token tensors (the packed total)
  bool packed = false;      // cu_seqlens given: token tensors are (1, T, ...)
  bool pool = false;        // state_indices given: past/present are slot pools
  bool has_past = false;    // past_state given (else a pool is read from present_state)
  bool spec = false;        // state_indices is (N, T_s)
  int64_t spec_len = 0;     // T_s
  int64_t slots = 0;        // rows of present_state
  int64_t read_slots = 0;   // rows of the pool read (past_state, or present_state)
  int64_t ckpt_interval = 0, ckpt_count = 0;  // checkpoints every n tokens, M per sequence
  IndexRef cu_seqlens, state_indices, read_state_indices, has_initial_state,
      num_accepted_tokens, checkpoint_indices;
  int32_t* error_flag = nullptr;  // device int32[1] or nullptr
};

// One sequence of a serving call, as resolve_sequence() finds it.
struct ResolvedSequence {
  int64_t b = 0;       // batch row of the token tensors (0 when packed)
  int64_t t0 = 0;      // first token within that row
  int64_t len = 0;     // tokens
  int64_t read = -1;   // row or slot the initial state comes from; -1 = zeros
  int64_t write = -1;  // row or slot of the final state (not speculative); -1 = none
  bool pad = false;    // skipped: nothing read or written, output rows zero
};

// Sequence n of the call: false when one of its indices breaks a rule (then nothing of it may
// be read or written; the kernel raises the error flag with 1 + n). Checks every index the
// sequence owns, including all its speculative slots and checkpoint slots, so a kernel that
// calls it before touching memory writes either everything of a sequence or nothing. For a
// PAD sequence (pad = true) only b, t0 and len are meaningful (its output rows are zeroed).
LINATTN_HD bool resolve_sequence(const ServingIndices& x, int64_t n, ResolvedSequence* r) {
  ResolvedSequence q;
  if (x.packed) {
    const int64_t c0 = x.cu_seqlens.at(n), c1 = x.cu_seqlens.at(n + 1);
    if (c0 < 0 || c1 < c0 || c1 > x.T) return false;
    if (n == 0 && c0 != 0) return false;
    if (n == x.N - 1 && c1 != x.T) return false;
    q.t0 = c0;
    q.len = c1 - c0;
  } else {
    q.b = n;
    q.len = x.T;
  }
  const bool initial = !x.has_initial_state.present() || x.has_initial_state.at(n) != 0;
  if (!x.pool) {
    q.write = n;
    q.read = (x.has_past && initial) ? n : -1;
    *r = q;
    return true;
  }
  if (x.spec) {
    if (q.len > x.spec_len) return false;
    for (int64_t t = 0; t < x.spec_len; ++t) {
      const int64_t v = x.state_indices.at(n, t);
      if (v < -1 || v >= x.slots) return false;
    }
    q.pad = x.state_indices.at(n, 0) == -1;
    if (q.pad) {
      *r = q;
      return true;
    }
    const int64_t acc = x.num_accepted_tokens.present() ? x.num_accepted_tokens.at(n) : 1;
    if (acc < 1 || acc > x.spec_len) return false;
    const int64_t rs = x.state_indices.at(n, acc - 1);
    if (rs >= x.read_slots) return false;
    q.read = initial ? rs : -1;
    *r = q;
    return true;
  }
  const int64_t w = x.state_indices.at(n);
  if (w < -1 || w >= x.slots) return false;
  // Checkpoint slots are range-checked for PAD sequences too, as the host plan does.
  for (int64_t j = 0; j < x.ckpt_count; ++j) {
    const int64_t v = x.checkpoint_indices.at(n, j);
    if (v < -1 || v >= x.slots) return false;
  }
  q.write = w;
  q.pad = w == -1;
  if (q.pad) {
    *r = q;
    return true;
  }
  int64_t rs = w;
  if (x.read_state_indices.present()) {
    rs = x.read_state_indices.at(n);
    if (rs < -1 || rs >= x.read_slots) return false;
  } else if (rs >= x.read_slots) {
    return false;
  }
  q.read = initial ? rs : -1;
  *r = q;
  return true;
}

// A LinearAttention serving call: the dense params describe the tensors (state strides are
// those of a pool slot when `ix.pool`; with `value_major` the state's rows (stride *_sk) index
// value dims and its columns key dims); the options below change the math.
struct LinearAttentionServing {
  LinearAttentionParams p;
  ServingIndices ix;
  bool value_major = false;
  bool qk_l2norm = false;
  float qk_l2norm_eps = 1e-6f;
  bool fused_gating = false;  // decay holds raw a (B, T, Hkv), beta raw b
  const void* A_log = nullptr;  linattn_dtype A_log_dtype = LINATTN_FLOAT32;  int64_t A_log_s = 0;
  const void* dt_bias = nullptr; linattn_dtype dt_bias_dtype = LINATTN_FLOAT32; int64_t dt_bias_s = 0;
};

struct CausalConvServing {
  CausalConvParams p;  // state strides are those of a pool slot when ix.pool
  ServingIndices ix;
};

}  // namespace linattn::detail
