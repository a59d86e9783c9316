// The serving adapter: a checked serving call (serving_check.cpp) run as dense calls of a host
// backend. Every dense call sees B = 1 and pointers offset to its sequence's first token and
// to its pool slots, so the backends need no serving code at all.
//
// On the CPU backend the fast-path sequences (key-major state, one segment) are instead the rows
// of one batched call (cpu/serving_rows.hpp) with the dense kernels' own work split, so a
// serving call pays no per-sequence call and no coarser split than the dense call.
//
// Costs beyond the dense kernels (docs/SERVING.md has measurements):
// - one dense call per sequence on the reference backend (per token when speculative, per
//   segment with checkpoints, on both);
// - the fast path (key-major state, one segment) reads and writes the pool slots directly;
// - otherwise the state is carried in a float32 (float64 for the oracle) host scratch: read
//   (and transposed, for value-major pools) once, updated in place segment by segment, and
//   written (transposed back) to every slot that asks for it: one extra read and write of the
//   state per sequence and per stored copy;
// - fused pre-processing (q/k L2 norm, gating from raw projections) is one pass over q, k,
//   decay and beta into scratch in the activation dtype, so normalised q/k and the gates are
//   rounded to that dtype before the kernel reads them (exact for float32 activations).
#include "core/serving.hpp"

#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>
#include <vector>

#include "core/dtype.hpp"
#include "core/thread_pool.hpp"
#include "core/view_check.hpp"
#include "cpu/serving_rows.hpp"

namespace linattn::detail {
namespace {

double ld(const void* base, int64_t i, linattn_dtype t) {
  if (t == LINATTN_FLOAT64) return static_cast<const double*>(base)[i];
  return static_cast<double>(load_as_float(base, i, t));
}

void st(void* base, int64_t i, linattn_dtype t, double x) {
  if (t == LINATTN_FLOAT64) {
    static_cast<double*>(base)[i] = x;
  } else {
    store_from_float(base, i, t, static_cast<float>(x));
  }
}

const void* at(const void* base, int64_t elems, linattn_dtype t) {
  return static_cast<const char*>(base) + elems * static_cast<int64_t>(dtype_bytes(t));
}
void* at(void* base, int64_t elems, linattn_dtype t) {
  return static_cast<char*>(base) + elems * static_cast<int64_t>(dtype_bytes(t));
}

// Host scratch, 64-byte aligned (kernels may use aligned vector loads on their own buffers;
// scratch should never be the reason they cannot).
class Scratch {
 public:
  void* get(size_t bytes) {
    raw_.assign(bytes + 64, 0);
    const uintptr_t p = reinterpret_cast<uintptr_t>(raw_.data());
    return reinterpret_cast<void*>((p + 63) & ~uintptr_t{63});
  }

 private:
  std::vector<unsigned char> raw_;
};

// ---- LinearAttention -------------------------------------------------------------------------

// q and k L2-normalised per head, the gates computed from raw projections: written to scratch
// of shape (B, T, width), contiguous, in the activation dtype; params re-pointed there.
struct Prepared {
  LinearAttentionParams p;
  Scratch q, k, g, beta;
};

void l2_normalise(const void* src, int64_t sb, int64_t stt, int32_t heads, int32_t d,
                  const LinearAttentionParams& p, double eps, Scratch& buf, const void** out,
                  int64_t* osb, int64_t* ost, ThreadPool* pool) {
  const int64_t W = int64_t{heads} * d, rows = p.B * p.T;
  void* dst = buf.get(static_cast<size_t>(rows * W) * dtype_bytes(p.act_dtype));
  pool->parallel_for(rows, [&](int64_t r, int) {
    const int64_t b = r / (p.T > 0 ? p.T : 1), t = r % (p.T > 0 ? p.T : 1);
    for (int32_t h = 0; h < heads; ++h) {
      const int64_t s0 = b * sb + t * stt + int64_t{h} * d, d0 = r * W + int64_t{h} * d;
      double ss = 0;
      for (int32_t i = 0; i < d; ++i) {
        const double x = ld(src, s0 + i, p.act_dtype);
        ss += x * x;
      }
      const double inv = 1.0 / std::sqrt(ss + eps);
      for (int32_t i = 0; i < d; ++i) st(dst, d0 + i, p.act_dtype, ld(src, s0 + i, p.act_dtype) * inv);
    }
  });
  *out = dst;
  *osb = p.T * W;
  *ost = W;
}

double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }

void prepare(const ServingLinearAttention& s, Prepared& pr, ThreadPool* pool) {
  LinearAttentionParams& p = pr.p;
  p = s.p;
  if (s.qk_l2norm) {
    l2_normalise(s.p.q, s.p.q_sb, s.p.q_st, p.Hq, p.dk, p, s.qk_l2norm_eps, pr.q, &p.q, &p.q_sb,
                 &p.q_st, pool);
    l2_normalise(s.p.k, s.p.k_sb, s.p.k_st, p.Hk, p.dk, p, s.qk_l2norm_eps, pr.k, &p.k, &p.k_sb,
                 &p.k_st, pool);
  }
  if (!s.fused_gating) return;
  const int64_t rows = p.B * p.T, tt = p.T > 0 ? p.T : 1;
  if (s.p.decay != nullptr) {  // g = -exp(A_log) * softplus(a + dt_bias), one per kv head
    void* dst = pr.g.get(static_cast<size_t>(rows * p.Hkv) * dtype_bytes(p.act_dtype));
    pool->parallel_for(rows, [&](int64_t r, int) {
      const int64_t b = r / tt, t = r % tt;
      for (int32_t h = 0; h < p.Hkv; ++h) {
        const double a = ld(s.p.decay, b * s.p.g_sb + t * s.p.g_st + h, p.act_dtype);
        const double A = ld(s.A_log, h * s.A_log_s, s.A_log_dtype);
        const double bias = s.dt_bias ? ld(s.dt_bias, h * s.dt_bias_s, s.dt_bias_dtype) : 0.0;
        st(dst, r * p.Hkv + h, p.act_dtype, -std::exp(A) * softplus(a + bias));
      }
    });
    p.decay = dst;
    p.g_sb = p.T * p.Hkv;
    p.g_st = p.Hkv;
  }
  if (s.p.beta != nullptr) {  // beta = sigmoid(b)
    const int32_t W = p.beta_shared ? 1 : p.Hkv;
    void* dst = pr.beta.get(static_cast<size_t>(rows * W) * dtype_bytes(p.act_dtype));
    pool->parallel_for(rows, [&](int64_t r, int) {
      const int64_t b = r / tt, t = r % tt;
      for (int32_t h = 0; h < W; ++h) {
        const double x = ld(s.p.beta, b * s.p.beta_sb + t * s.p.beta_st + h, p.act_dtype);
        st(dst, r * W + h, p.act_dtype, 1.0 / (1.0 + std::exp(-x)));
      }
    });
    p.beta = dst;
    p.beta_sb = p.T * W;
    p.beta_st = W;
  }
}

// The dense params of tokens [off, off + len) of one sequence; states left to the caller.
LinearAttentionParams token_range(const LinearAttentionParams& p, const ServingSequence& q,
                                  int64_t off, int64_t len) {
  LinearAttentionParams r = p;
  r.B = 1;
  r.T = len;
  const int64_t t = q.t0 + off;
  const linattn_dtype a = p.act_dtype;
  r.q = at(p.q, q.b * p.q_sb + t * p.q_st, a);
  r.k = at(p.k, q.b * p.k_sb + t * p.k_st, a);
  r.v = at(p.v, q.b * p.v_sb + t * p.v_st, a);
  if (p.decay) r.decay = at(p.decay, q.b * p.g_sb + t * p.g_st, a);
  if (p.beta) r.beta = at(p.beta, q.b * p.beta_sb + t * p.beta_st, a);
  r.out = at(p.out, q.b * p.o_sb + t * p.o_st, a);
  return r;
}

// A pool (or per-sequence rows) of state blocks: slot s, head h, row i (key dim, or value dim
// when value-major), column j: base + s*sb + h*sh + i*sk + j.
struct StatePool {
  void* base = nullptr;
  linattn_dtype dtype = LINATTN_FLOAT32;
  int64_t sb = 0, sh = 0, sk = 0;
};

// The float carry (key-major, contiguous) <-> one slot of a pool, transposing value-major.
void load_carry(const StatePool& src, int64_t slot, bool vm, const LinearAttentionParams& p,
                void* carry, linattn_dtype cdt, ThreadPool* pool) {
  const int64_t dk = p.dk, dv = p.dv;
  pool->parallel_for(p.Hkv, [&](int64_t h, int) {
    const int64_t c0 = h * dk * dv, s0 = slot * src.sb + h * src.sh;
    for (int64_t i = 0; i < dk; ++i)
      for (int64_t j = 0; j < dv; ++j) {
        const int64_t e = vm ? s0 + j * src.sk + i : s0 + i * src.sk + j;
        st(carry, c0 + i * dv + j, cdt, slot < 0 ? 0.0 : ld(src.base, e, src.dtype));
      }
  });
}

void store_carry(const void* carry, linattn_dtype cdt, const StatePool& dst, int64_t slot,
                 bool vm, const LinearAttentionParams& p, ThreadPool* pool) {
  const int64_t dk = p.dk, dv = p.dv;
  pool->parallel_for(p.Hkv, [&](int64_t h, int) {
    const int64_t c0 = h * dk * dv, s0 = slot * dst.sb + h * dst.sh;
    for (int64_t i = 0; i < dk; ++i)
      for (int64_t j = 0; j < dv; ++j) {
        const int64_t e = vm ? s0 + j * dst.sk + i : s0 + i * dst.sk + j;
        st(dst.base, e, dst.dtype, ld(carry, c0 + i * dv + j, cdt));
      }
  });
}

void zero_attention_output(const LinearAttentionParams& p, const ServingSequence& q) {
  const int64_t W = int64_t{p.Hout} * p.dv;
  for (int64_t t = q.t0; t < q.t0 + q.len; ++t)
    for (int64_t c = 0; c < W; ++c) st(p.out, q.b * p.o_sb + t * p.o_st + c, p.act_dtype, 0.0);
}


// The dense params of kv heads [h0, h0 + G) of a call: every tensor offset to the first head of
// the slice, head counts shrunk. G and h0 are multiples of unit_heads(p), so the slice keeps
// the call's head mapping (SEMANTICS.md "Head mapping") exactly.
int32_t unit_heads(const LinearAttentionParams& p) {
  const int32_t rk = p.Hkv / p.Hk, rq = p.Hq < p.Hkv ? p.Hkv / p.Hq : 1;
  return std::lcm(rk, rq);
}

LinearAttentionParams head_slice(const LinearAttentionParams& p, int32_t h0, int32_t G) {
  LinearAttentionParams r = p;
  const linattn_dtype a = p.act_dtype;
  const int32_t rk = p.Hkv / p.Hk;
  r.Hkv = G;
  r.Hk = G / rk;
  r.k = at(p.k, int64_t{h0 / rk} * p.dk, a);
  if (p.Hq >= p.Hkv) {
    const int32_t rq = p.Hq / p.Hkv;
    r.Hq = G * rq;
    r.q = at(p.q, int64_t{h0} * rq * p.dk, a);
    r.out = at(p.out, int64_t{h0} * rq * p.dv, a);
  } else {
    const int32_t ri = p.Hkv / p.Hq;
    r.Hq = G / ri;
    r.q = at(p.q, int64_t{h0 / ri} * p.dk, a);
    r.out = at(p.out, int64_t{h0} * p.dv, a);
  }
  r.Hout = r.Hq > r.Hkv ? r.Hq : r.Hkv;
  r.v = at(p.v, int64_t{h0} * p.dv, a);
  if (p.decay) r.decay = at(p.decay, p.decay_per_key_dim ? int64_t{h0} * p.dk : h0, a);
  if (p.beta && !p.beta_shared) r.beta = at(p.beta, h0, a);
  if (p.past) r.past = at(p.past, h0 * p.past_sh, p.past_dtype);
  r.present = at(p.present, h0 * p.pres_sh, p.present_dtype);
  return r;
}

// Runs independent dense calls. With enough of them to occupy every thread, each runs whole on
// one thread (its own single-thread pool: one fork/join for the batch instead of one per call,
// and no idle threads on a call of few heads); otherwise one after the other on all threads.
template <class Params, class Fn>
Status run_independent(const std::vector<Params>& calls, Fn dense, const Exec& e) {
  const int threads = e.pool->num_threads();
  if (threads == 1 || static_cast<int64_t>(calls.size()) < threads) {
    for (const Params& c : calls) LINATTN_RETURN_IF_ERROR(dense(c, e));
    return Status::ok_status();
  }
  std::mutex mu;
  Status first;
  e.pool->parallel_for(static_cast<int64_t>(calls.size()), [&](int64_t i, int) {
    ThreadPool solo(1);
    Exec one = e;
    one.pool = &solo;
    Status s = dense(calls[i], one);
    if (!s.ok()) {
      std::lock_guard<std::mutex> lock(mu);
      if (first.ok()) first = s;
    }
  });
  return first;
}
}  // namespace

Status run_linear_attention_serving(const ServingLinearAttention& s, LinearAttentionFn dense,
                                    linattn_dtype carry_dtype, const Exec& e) {
  const ServingPlan& plan = s.plan;
  Prepared pr;
  if (s.qk_l2norm || s.fused_gating) {
    prepare(s, pr, e.pool);
  } else {
    pr.p = s.p;
  }
  const LinearAttentionParams& p = pr.p;
  if (plan.whole_batch) {
    LINATTN_RETURN_IF_ERROR(dense(p, e));
    if (plan.error_flag) *plan.error_flag = 0;
    return Status::ok_status();
  }

  const StatePool write{p.present, p.present_dtype, p.pres_sb, p.pres_sh, p.pres_sk};
  const StatePool read = plan.read_present || p.past == nullptr
                             ? write
                             : StatePool{const_cast<void*>(p.past), p.past_dtype, p.past_sb,
                                         p.past_sh, p.past_sk};
  // The read pool is the written pool itself (same memory, same strides).
  const bool same_pool = plan.read_present || p.in_place;

  Scratch carry_buf;
  const int64_t block = int64_t{p.Hkv} * p.dk * p.dv;
  void* carry = nullptr;
  // Fast-path calls, one per sequence, split by head groups at the end; or, on the CPU, the
  // rows of one batched call (cpu/serving_rows.hpp) with the dense kernels' own work split.
  std::vector<LinearAttentionParams> fast;
  const bool rows_entry = dense == &cpu::linear_attention;
  std::vector<cpu::SequenceRow> rows;

  for (int64_t n = 0; n < plan.N; ++n) {
    const ServingSequence& q = plan.seqs[n];
    if (q.pad) {
      zero_attention_output(p, q);
      continue;
    }
    // Checkpoints that fall inside the sequence and are stored.
    std::vector<int64_t> cuts;  // token counts after which the state is stored, with the slot
    std::vector<int64_t> cut_slots;
    for (int64_t j = 1; j <= plan.ckpt_count; ++j) {
      const int64_t end = j * plan.ckpt_interval;
      if (end > q.len) break;
      const int64_t slot = plan.ckpt_slots[n * plan.ckpt_count + j - 1];
      if (slot < 0) continue;
      cuts.push_back(end);
      cut_slots.push_back(slot);
    }

    if (!plan.spec && !s.value_major && cuts.empty()) {
      // Fast path: one dense call straight on the slots (or one row of the batched call).
      cpu::SequenceRow row;
      row.b = q.b;
      row.t0 = q.t0;
      row.len = q.len;
      row.past = q.read >= 0 ? at(read.base, q.read * read.sb, read.dtype) : nullptr;
      row.present = at(write.base, q.write * write.sb, write.dtype);
      row.in_place = same_pool && q.read == q.write;
      if (q.len == 0 && row.in_place) continue;  // nothing to compute, nothing moves
      if (rows_entry) {
        rows.push_back(row);
        continue;
      }
      LinearAttentionParams r = token_range(p, q, 0, q.len);
      r.past = row.past;
      r.past_dtype = read.dtype;
      r.past_sb = read.sb, r.past_sh = read.sh, r.past_sk = read.sk;
      r.present = row.present;
      r.in_place = row.in_place;
      fast.push_back(r);
      continue;
    }

    // Carried path: the state lives in the scratch between segments.
    if (!carry) carry = carry_buf.get(static_cast<size_t>(block) * dtype_bytes(carry_dtype));
    load_carry(read, q.read, s.value_major, p, carry, carry_dtype, e.pool);
    auto run_segment = [&](int64_t off, int64_t len) {
      LinearAttentionParams r = token_range(p, q, off, len);
      r.past = carry;
      r.present = carry;
      r.past_dtype = r.present_dtype = carry_dtype;
      r.past_sb = r.pres_sb = block;
      r.past_sh = r.pres_sh = int64_t{p.dk} * p.dv;
      r.past_sk = r.pres_sk = p.dv;
      r.in_place = true;
      return dense(r, e);
    };
    if (plan.spec) {
      for (int64_t t = 0; t < q.len; ++t) {
        LINATTN_RETURN_IF_ERROR(run_segment(t, 1));
        const int64_t slot = plan.spec_slots[n * plan.spec_len + t];
        if (slot >= 0) store_carry(carry, carry_dtype, write, slot, s.value_major, p, e.pool);
      }
      continue;
    }
    int64_t pos = 0;
    for (size_t c = 0; c < cuts.size(); ++c) {
      LINATTN_RETURN_IF_ERROR(run_segment(pos, cuts[c] - pos));
      store_carry(carry, carry_dtype, write, cut_slots[c], s.value_major, p, e.pool);
      pos = cuts[c];
    }
    if (pos < q.len || pos == 0) LINATTN_RETURN_IF_ERROR(run_segment(pos, q.len - pos));
    store_carry(carry, carry_dtype, write, q.write, s.value_major, p, e.pool);
  }
  if (rows_entry) {
    LinearAttentionParams base = p;  // the blocks' form; B, T, past, present come per row
    base.past_dtype = read.dtype;
    base.past_sb = read.sb, base.past_sh = read.sh, base.past_sk = read.sk;
    LINATTN_RETURN_IF_ERROR(
        cpu::linear_attention_rows(base, rows.data(), static_cast<int64_t>(rows.size()), e));
    if (plan.error_flag) *plan.error_flag = 0;
    return Status::ok_status();
  }
  // Head groups as large as still give every thread about four calls: few sequences (prefill)
  // are split finely, many (decode) hardly at all.
  const int64_t want = 4 * int64_t{e.pool->num_threads()};
  const int32_t u = unit_heads(p);
  int32_t G = u;
  for (int32_t g = p.Hkv; g > u; --g) {
    if (g % u == 0 && p.Hkv % g == 0 && static_cast<int64_t>(fast.size()) * (p.Hkv / g) >= want) {
      G = g;
      break;
    }
  }
  std::vector<LinearAttentionParams> calls;
  calls.reserve(fast.size() * static_cast<size_t>(p.Hkv / G));
  for (const LinearAttentionParams& r : fast)
    for (int32_t h0 = 0; h0 < p.Hkv; h0 += G) calls.push_back(head_slice(r, h0, G));
  LINATTN_RETURN_IF_ERROR(run_independent(calls, dense, e));
  if (plan.error_flag) *plan.error_flag = 0;
  return Status::ok_status();
}

// ---- CausalConvWithState ---------------------------------------------------------------------

Status run_causal_conv_serving(const ServingCausalConv& s, CausalConvFn dense,
                               linattn_dtype carry_dtype, const Exec& e) {
  const ServingPlan& plan = s.plan;
  const CausalConvParams& p = s.p;
  const int64_t W = p.K - 1;
  // Pools: slot s, channel c, column j: base + s*sb + c*sc + j.
  struct Pool { void* base; linattn_dtype dtype; int64_t sb, sc; };
  const Pool write{p.present, p.present_dtype, p.pres_sb, p.pres_sc};
  const Pool read = plan.read_present || p.past == nullptr
                        ? write
                        : Pool{const_cast<void*>(p.past), p.past_dtype, p.past_sb, p.past_sc};
  const bool same_pool = plan.read_present || p.in_place;
  auto token_range = [&](const ServingSequence& q, int64_t off, int64_t len) {
    CausalConvParams r = p;
    r.B = 1;
    r.L = len;
    const int64_t l = q.t0 + off;
    r.x = at(p.x, q.b * p.x_sb + l * p.x_sl, p.act_dtype);
    r.y = at(p.y, q.b * p.y_sb + l * p.y_sl, p.act_dtype);
    return r;
  };

  // On the CPU the sequences (not speculative) are the rows of one batched call
  // (cpu/serving_rows.hpp), run after the loop.
  const bool rows_entry = dense == &cpu::causal_conv && !plan.spec;
  std::vector<cpu::SequenceRow> rows;
  if (rows_entry) rows.reserve(static_cast<size_t>(plan.N));
  Scratch carry_buf;
  void* carry = nullptr;
  for (int64_t n = 0; n < plan.N; ++n) {
    const ServingSequence& q = plan.seqs[n];
    if (q.pad) {
      for (int64_t l = q.t0; l < q.t0 + q.len; ++l)
        for (int64_t c = 0; c < p.C; ++c)
          st(p.y, q.b * p.y_sb + c * p.y_sc + l * p.y_sl, p.act_dtype, 0.0);
      continue;
    }
    if (!plan.spec) {
      const void* past = q.read >= 0 ? at(read.base, q.read * read.sb, read.dtype) : nullptr;
      void* present = at(write.base, q.write * write.sb, write.dtype);
      const bool in_place = same_pool && q.read == q.write;
      if (q.len == 0 && in_place) continue;
      if (rows_entry) {  // a row holds addresses only: no params copy per sequence
        rows.push_back(cpu::SequenceRow{q.b, q.t0, q.len, past, present, in_place});
        continue;
      }
      CausalConvParams r = token_range(q, 0, q.len);
      r.past = past;
      r.past_dtype = read.dtype;
      r.past_sb = read.sb, r.past_sc = read.sc;
      r.present = present;
      r.in_place = in_place;
      LINATTN_RETURN_IF_ERROR(dense(r, e));
      continue;
    }
    // Speculative: one token at a time on a carried window, every window stored to its slot.
    if (!carry) carry = carry_buf.get(static_cast<size_t>(p.C * W + 1) * dtype_bytes(carry_dtype));
    for (int64_t c = 0; c < p.C; ++c)
      for (int64_t j = 0; j < W; ++j)
        st(carry, c * W + j, carry_dtype,
           q.read < 0 ? 0.0 : ld(read.base, q.read * read.sb + c * read.sc + j, read.dtype));
    for (int64_t t = 0; t < q.len; ++t) {
      CausalConvParams r = token_range(q, t, 1);
      r.past = r.present = carry;
      r.past_dtype = r.present_dtype = carry_dtype;
      r.past_sb = r.pres_sb = p.C * W;
      r.past_sc = r.pres_sc = W;
      r.in_place = true;
      LINATTN_RETURN_IF_ERROR(dense(r, e));
      const int64_t slot = plan.spec_slots[n * plan.spec_len + t];
      if (slot < 0) continue;
      for (int64_t c = 0; c < p.C; ++c)
        for (int64_t j = 0; j < W; ++j)
          st(write.base, slot * write.sb + c * write.sc + j, write.dtype,
             ld(carry, c * W + j, carry_dtype));
    }
  }
  if (rows_entry) {
    CausalConvParams base = p;  // the state rows' form; B, L, past, present come per row
    base.past_dtype = read.dtype;
    base.past_sb = read.sb, base.past_sc = read.sc;
    LINATTN_RETURN_IF_ERROR(
        cpu::causal_conv_rows(base, rows.data(), static_cast<int64_t>(rows.size()), e));
  }
  if (plan.error_flag) *plan.error_flag = 0;
  return Status::ok_status();
}

}  // namespace linattn::detail
