// Validation of the serving fields (linattn.h, linattn_serving_args; docs/SERVING.md), in
// three steps: the serving views on their own (rank, shape against N, integer dtype, memory
// space), then the dense rules under the state form they imply (check.cpp), then the index
// contents. Index contents are data: host backends read them here, before anything is written,
// so an out-of-range slot is an error and never an access. Device backends cannot read them
// without a synchronisation: they get the views (ServingIndices) and resolve each sequence in
// the kernel (serving_params.hpp), with the same rules.
#include <algorithm>
#include <cmath>
#include <sstream>

#include "core/check.hpp"
#include "core/serving.hpp"
#include "core/view_check.hpp"

namespace linattn::detail {
namespace {

constexpr const char* kLA = "LinearAttention";
constexpr const char* kConv = "CausalConvWithState";

// Element (i, j) of a rank-1 or rank-2 index view (int32 or int64, host memory).
int64_t index_at(const linattn_tensor& t, int64_t i, int64_t j = 0) {
  const int64_t off = i * t.strides[0] + (t.rank == 2 ? j * t.strides[1] : 0);
  return t.dtype == LINATTN_INT32 ? static_cast<const int32_t*>(t.data)[off]
                                  : static_cast<const int64_t*>(t.data)[off];
}

std::string field(const char* name) { return std::string("serving.") + name; }

// A present index view: the generic view rules, then an integer dtype.
Status check_index_view(const char* op, const char* name, const linattn_tensor& t, int rank,
                        const char* layout, linattn_backend backend, bool int32_only,
                        ByteSpan* span) {
  const std::string n = field(name);
  LINATTN_RETURN_IF_ERROR(check_view(op, n.c_str(), t, rank, layout, backend, span));
  const int dt = enum_value(t.dtype);
  if (dt == LINATTN_INT32 || (!int32_only && dt == LINATTN_INT64)) return Status::ok_status();
  std::ostringstream m;
  m << op << ": " << n << " has dtype " << dtype_string(dt) << "; expected "
    << (int32_only ? "int32" : "int32 or int64");
  return invalid(m.str());
}

Status shape_mismatch(const char* op, const char* name, const linattn_tensor& t,
                      const std::string& expected) {
  std::ostringstream m;
  m << op << ": " << field(name) << " has shape " << shape_string(t) << "; expected "
    << expected;
  return invalid(m.str());
}

// What the serving views say about the call before the dense rules run.
struct ServingShape {
  int64_t N = 0;
  bool packed = false, pool = false, spec = false;
  int64_t spec_len = 0, ckpt_count = 0;
  ByteSpan spans[10];  // index (and gate parameter) inputs, for the aliasing check against the outputs
  int n_spans = 0;
  ByteSpan flag_span;
};

// Step 1, shared by both operators. B = batch of the token tensors, T their length.
Status check_serving_views(const char* op, const linattn_serving_args& s,
                           linattn_backend backend, int64_t B, ServingShape* out) {
  ServingShape sh;
  if (s.cu_seqlens.rank != 0) {
    ByteSpan sp;
    LINATTN_RETURN_IF_ERROR(check_index_view(op, "cu_seqlens", s.cu_seqlens, 1, "(N+1)",
                                             backend, false, &sp));
    if (s.cu_seqlens.shape[0] < 1) {
      return shape_mismatch(op, "cu_seqlens", s.cu_seqlens, "(N+1) with N >= 0");
    }
    sh.packed = true;
    sh.N = s.cu_seqlens.shape[0] - 1;
    sh.spans[sh.n_spans++] = sp;
  } else {
    sh.N = B;
  }
  const std::string nshape = "(N=" + std::to_string(sh.N) + ")";
  if (s.state_indices.rank != 0) {
    ByteSpan sp;
    const int r = s.state_indices.rank == 2 ? 2 : 1;
    LINATTN_RETURN_IF_ERROR(check_index_view(op, "state_indices", s.state_indices, r,
                                             "(N) or (N, T_s)", backend, false, &sp));
    if (s.state_indices.shape[0] != sh.N || (r == 2 && s.state_indices.shape[1] < 1)) {
      return shape_mismatch(op, "state_indices", s.state_indices,
                            "(N=" + std::to_string(sh.N) + ") or (N=" + std::to_string(sh.N) +
                                ", T_s >= 1), N = " +
                                (sh.packed ? "cu_seqlens.shape[0] - 1" : "the batch size B"));
    }
    sh.pool = true;
    sh.spec = r == 2;
    sh.spec_len = r == 2 ? s.state_indices.shape[1] : 0;
    sh.spans[sh.n_spans++] = sp;
  }
  struct Vec { const char* name; const linattn_tensor* t; };
  for (Vec v : {Vec{"read_state_indices", &s.read_state_indices},
                Vec{"has_initial_state", &s.has_initial_state},
                Vec{"num_accepted_tokens", &s.num_accepted_tokens}}) {
    if (v.t->rank == 0) continue;
    ByteSpan sp;
    LINATTN_RETURN_IF_ERROR(check_index_view(op, v.name, *v.t, 1, "(N)", backend, false, &sp));
    if (v.t->shape[0] != sh.N) return shape_mismatch(op, v.name, *v.t, nshape);
    sh.spans[sh.n_spans++] = sp;
  }
  if (s.read_state_indices.rank != 0 && (!sh.pool || sh.spec)) {
    return invalid(std::string(op) + ": " + field("read_state_indices") +
                   " is given, which needs serving.state_indices of shape (N) (a state pool, "
                   "not speculative decoding); state_indices has shape " +
                   shape_string(s.state_indices));
  }
  if (s.num_accepted_tokens.rank != 0 && !sh.spec) {
    return invalid(std::string(op) + ": " + field("num_accepted_tokens") +
                   " is given, which needs speculative decoding: serving.state_indices of "
                   "shape (N, T_s); state_indices has shape " + shape_string(s.state_indices));
  }
  if (s.error_flag.rank != 0) {
    LINATTN_RETURN_IF_ERROR(check_index_view(op, "error_flag", s.error_flag, 1, "(1)", backend,
                                             true, &sh.flag_span));
    if (s.error_flag.shape[0] != 1) return shape_mismatch(op, "error_flag", s.error_flag, "(1)");
  }
  *out = sh;
  return Status::ok_status();
}

// Outputs (and the error flag) never overlap an index input; the flag never overlaps outputs.
Status check_index_aliasing(const char* op, const ServingShape& sh, const ByteSpan* outs,
                            const char* const* out_names, int n_outs) {
  for (int o = 0; o < n_outs + 1; ++o) {
    const ByteSpan& a = o < n_outs ? outs[o] : sh.flag_span;
    const char* name = o < n_outs ? out_names[o] : "serving.error_flag";
    for (int i = 0; i < sh.n_spans; ++i) {
      if (spans_overlap(a, sh.spans[i])) {
        return invalid(std::string(op) + ": " + name +
                       " overlaps a serving index input; outputs must not overlap any input");
      }
    }
    if (o == n_outs) {
      for (int j = 0; j < n_outs; ++j)
        if (spans_overlap(a, outs[j]))
          return invalid(std::string(op) + ": serving.error_flag overlaps " + out_names[j] +
                         "; the outputs must be disjoint");
    }
  }
  return Status::ok_status();
}

Status bad_index(const char* op, const char* name, int64_t n, int64_t j, bool two_d,
                 int64_t value, const std::string& expected) {
  std::ostringstream m;
  m << op << ": " << field(name) << '[' << n;
  if (two_d) m << ", " << j;
  m << "] = " << value << " (sequence " << n << "); expected " << expected
    << "; nothing was read or written";
  return invalid(m.str());
}

std::string slot_range(int64_t slots, const char* pool, bool pad_ok) {
  std::ostringstream m;
  if (pad_ok) m << "-1 (PAD) or ";
  if (slots > 0) m << "a slot 0.." << slots - 1;
  else m << "no slot at all";
  m << " of " << pool << " (" << slots << " slots)";
  return m.str();
}

// Step 3: the index contents into a plan. T = length of the token tensors (per batch row, or
// the packed total); slots = rows of the written pool, read_slots = rows of the read pool.
Status resolve_plan(const char* op, const linattn_serving_args& s, const ServingShape& sh,
                    int64_t T, bool has_past, int64_t slots, int64_t read_slots,
                    const char* read_pool, ServingPlan* plan) {
  ServingPlan pl;
  pl.N = sh.N;
  pl.pool = sh.pool;
  pl.read_present = sh.pool && !has_past;
  pl.spec = sh.spec;
  pl.spec_len = sh.spec_len;
  pl.seqs.resize(static_cast<size_t>(sh.N));
  // Token ranges.
  if (sh.packed) {
    int64_t prev = 0;
    for (int64_t n = 0; n <= sh.N; ++n) {
      const int64_t c = index_at(s.cu_seqlens, n);
      if ((n == 0 && c != 0) || c < prev || c > T) {
        std::ostringstream m;
        m << op << ": " << field("cu_seqlens") << '[' << n << "] = " << c;
        if (n == 0) m << "; expected 0 (sequences start at the first packed token)";
        else if (c < prev) m << " is less than cu_seqlens[" << n - 1 << "] = " << prev
                             << "; expected non-decreasing offsets";
        else m << " exceeds the " << T << " packed tokens";
        return invalid(m.str());
      }
      if (n > 0) {
        pl.seqs[n - 1].t0 = prev;
        pl.seqs[n - 1].len = c - prev;
      }
      prev = c;
    }
    if (prev != T) {
      std::ostringstream m;
      m << op << ": " << field("cu_seqlens") << '[' << sh.N << "] = " << prev
        << "; expected the number of packed tokens T = " << T;
      return invalid(m.str());
    }
  } else {
    for (int64_t n = 0; n < sh.N; ++n) pl.seqs[n] = ServingSequence{n, 0, T, -1, -1, false};
  }
  // Slots.
  for (int64_t n = 0; n < sh.N; ++n) {
    ServingSequence& q = pl.seqs[n];
    const bool initial = s.has_initial_state.rank == 0 || index_at(s.has_initial_state, n) != 0;
    if (!sh.pool) {
      q.write = n;
      q.read = (has_past && initial) ? n : -1;
      continue;
    }
    if (sh.spec) {
      if (q.len > sh.spec_len) {
        std::ostringstream m;
        m << op << ": sequence " << n << " has " << q.len << " tokens but "
          << field("state_indices") << " has shape " << shape_string(s.state_indices)
          << ", room for the states of T_s = " << sh.spec_len << " tokens";
        return invalid(m.str());
      }
      for (int64_t t = 0; t < sh.spec_len; ++t) {
        const int64_t v = index_at(s.state_indices, n, t);
        if (v < -1 || v >= slots)
          return bad_index(op, "state_indices", n, t, true, v,
                           slot_range(slots, "present_state", true));
        pl.spec_slots.push_back(v);
      }
      q.pad = pl.spec_slots[n * sh.spec_len] == -1;
      if (q.pad) continue;
      int64_t acc = 1;
      if (s.num_accepted_tokens.rank != 0) {
        acc = index_at(s.num_accepted_tokens, n);
        if (acc < 1 || acc > sh.spec_len) {
          return bad_index(op, "num_accepted_tokens", n, 0, false, acc,
                           "1..T_s = 1.." + std::to_string(sh.spec_len) +
                               " (the state after token num_accepted_tokens-1 is resumed)");
        }
      }
      const int64_t r = pl.spec_slots[n * sh.spec_len + acc - 1];
      if (r >= read_slots)
        return bad_index(op, "state_indices", n, acc - 1, true, r,
                         slot_range(read_slots, read_pool, true));
      q.read = initial ? r : -1;
      continue;
    }
    const int64_t w = index_at(s.state_indices, n);
    if (w < -1 || w >= slots)
      return bad_index(op, "state_indices", n, 0, false, w,
                       slot_range(slots, "present_state", true));
    q.write = w;
    q.pad = w == -1;
    if (q.pad) continue;
    int64_t r = w;
    if (s.read_state_indices.rank != 0) {
      r = index_at(s.read_state_indices, n);
      if (r < -1 || r >= read_slots)
        return bad_index(op, "read_state_indices", n, 0, false, r,
                         "-1 (start from zeros) or " + slot_range(read_slots, read_pool, false));
    } else if (r >= read_slots) {
      return bad_index(op, "state_indices", n, 0, false, r,
                       slot_range(read_slots, read_pool, true) +
                           " (the pool read, as no read_state_indices are given)");
    }
    q.read = initial ? r : -1;
  }
  // Checkpoints.
  if (s.checkpoint_indices.rank != 0) {
    pl.ckpt_interval = s.checkpoint_interval;
    pl.ckpt_count = sh.ckpt_count;
    for (int64_t n = 0; n < sh.N; ++n)
      for (int64_t j = 0; j < sh.ckpt_count; ++j) {
        const int64_t v = index_at(s.checkpoint_indices, n, j);
        if (v < -1 || v >= slots)
          return bad_index(op, "checkpoint_indices", n, j, true, v,
                           "-1 (not stored) or " + slot_range(slots, "present_state", false));
        pl.ckpt_slots.push_back(v);
      }
  }
  pl.error_flag = s.error_flag.rank != 0 ? static_cast<int32_t*>(s.error_flag.data) : nullptr;
  *plan = std::move(pl);
  return Status::ok_status();
}

IndexRef index_ref(const linattn_tensor& t) {
  IndexRef r;
  if (t.rank == 0) return r;
  r.data = t.data;
  r.i64 = t.dtype == LINATTN_INT64;
  r.s0 = t.strides[0];
  r.s1 = t.rank == 2 ? t.strides[1] : 0;
  return r;
}

// The index views as device kernels read them (contents unread).
ServingIndices serving_indices(const linattn_serving_args& s, const ServingShape& sh, int64_t T,
                               bool has_past, int64_t slots, int64_t read_slots) {
  ServingIndices x;
  x.N = sh.N;
  x.T = T;
  x.packed = sh.packed;
  x.pool = sh.pool;
  x.has_past = has_past;
  x.spec = sh.spec;
  x.spec_len = sh.spec_len;
  x.slots = slots;
  x.read_slots = read_slots;
  x.ckpt_count = sh.ckpt_count;
  x.ckpt_interval = sh.ckpt_count > 0 ? s.checkpoint_interval : 0;
  x.cu_seqlens = index_ref(s.cu_seqlens);
  x.state_indices = index_ref(s.state_indices);
  x.read_state_indices = index_ref(s.read_state_indices);
  x.has_initial_state = index_ref(s.has_initial_state);
  x.num_accepted_tokens = index_ref(s.num_accepted_tokens);
  x.checkpoint_indices = index_ref(s.checkpoint_indices);
  x.error_flag = s.error_flag.rank != 0 ? static_cast<int32_t*>(s.error_flag.data) : nullptr;
  return x;
}

bool host_backend(linattn_backend b) { return b != LINATTN_BACKEND_CUDA; }

}  // namespace

Status check_linear_attention_serving(const linattn_linear_attention_args& a,
                                      linattn_backend backend, ServingLinearAttention* out) {
  const linattn_serving_args& s = a.serving;
  LinearAttentionParams p;
  if (a.query.rank != 3) return check_linear_attention_form(a, backend, StateForm{}, &p);
  ServingShape sh;
  LINATTN_RETURN_IF_ERROR(check_serving_views(kLA, s, backend, a.query.shape[0], &sh));

  // LinearAttention-only scalars.
  const int layout = enum_value(s.state_layout);
  if (layout != LINATTN_STATE_KEY_MAJOR && layout != LINATTN_STATE_VALUE_MAJOR) {
    std::ostringstream m;
    m << kLA << ": serving.state_layout has unknown value " << layout
      << "; expected key-major (0) or value-major (1)";
    return invalid(m.str());
  }
  if (!std::isfinite(s.qk_l2norm_eps) || s.qk_l2norm_eps < 0.f) {
    std::ostringstream m;
    m << kLA << ": serving.qk_l2norm_eps is " << s.qk_l2norm_eps
      << "; expected a finite number >= 0 (0 = 1e-6)";
    return invalid(m.str());
  }
  if (s.qk_l2norm_eps != 0.f && s.qk_l2norm == 0) {
    return invalid(std::string(kLA) + ": serving.qk_l2norm_eps is set but serving.qk_l2norm "
                   "is 0; set qk_l2norm to normalise q and k in the call");
  }
  // Checkpoints.
  const int64_t chunk = a.chunk_size != 0 ? a.chunk_size : 64;
  if (s.checkpoint_interval != 0 || s.checkpoint_indices.rank != 0) {
    if (s.checkpoint_interval <= 0 || s.checkpoint_interval % chunk != 0) {
      std::ostringstream m;
      m << kLA << ": serving.checkpoint_interval is " << s.checkpoint_interval
        << "; expected a positive multiple of the chunk size " << chunk
        << " when checkpoints are requested";
      return invalid(m.str());
    }
    if (!sh.pool || sh.spec) {
      return invalid(std::string(kLA) + ": checkpoints need serving.state_indices of shape "
                     "(N) (a state pool to write them to, not speculative decoding); "
                     "state_indices has shape " + shape_string(s.state_indices));
    }
    if (s.checkpoint_indices.rank == 0) {
      return invalid(std::string(kLA) + ": serving.checkpoint_interval is set but "
                     "serving.checkpoint_indices is absent; expected (N, M) slots");
    }
    ByteSpan sp;
    LINATTN_RETURN_IF_ERROR(check_index_view(kLA, "checkpoint_indices", s.checkpoint_indices,
                                             2, "(N, M)", backend, false, &sp));
    if (s.checkpoint_indices.shape[0] != sh.N)
      return shape_mismatch(kLA, "checkpoint_indices", s.checkpoint_indices,
                            "(N=" + std::to_string(sh.N) + ", M)");
    sh.ckpt_count = s.checkpoint_indices.shape[1];
    sh.spans[sh.n_spans++] = sp;
  }

  // The dense rules under the state form.
  StateForm form;
  form.rows = sh.pool ? StateForm::kRowsAny : (sh.packed ? sh.N : StateForm::kRowsB);
  form.value_major = layout == LINATTN_STATE_VALUE_MAJOR;
  form.packed = sh.packed;
  form.form = sh.pool ? " (a state pool: serving.state_indices is given)"
                      : (sh.packed ? " (one row per sequence of serving.cu_seqlens)" : "");
  LINATTN_RETURN_IF_ERROR(check_linear_attention_form(a, backend, form, &p));

  // Fused gating.
  ServingLinearAttention r;
  const bool gating = s.fused_gating != 0;
  if (!gating && (s.A_log.rank != 0 || s.dt_bias.rank != 0)) {
    return invalid(std::string(kLA) + ": serving.A_log or serving.dt_bias is given but "
                   "serving.fused_gating is 0");
  }
  if (gating) {
    if (s.A_log.rank == 0) {
      return invalid(std::string(kLA) + ": serving.fused_gating needs serving.A_log (H_kv=" +
                     std::to_string(a.kv_num_heads) + ")");
    }
    struct Gate { const char* name; const linattn_tensor* t; const void** data;
                  linattn_dtype* dt; int64_t* stride; };
    for (Gate g : {Gate{"A_log", &s.A_log, &r.A_log, &r.A_log_dtype, &r.A_log_s},
                   Gate{"dt_bias", &s.dt_bias, &r.dt_bias, &r.dt_bias_dtype, &r.dt_bias_s}}) {
      if (g.t->rank == 0) continue;
      const std::string n = field(g.name);
      ByteSpan sp;
      LINATTN_RETURN_IF_ERROR(check_view(kLA, n.c_str(), *g.t, 1, "(H_kv)", backend, &sp));
      LINATTN_RETURN_IF_ERROR(check_float_dtype(kLA, n.c_str(), g.t->dtype, backend));
      if (g.t->shape[0] != a.kv_num_heads)
        return shape_mismatch(kLA, g.name, *g.t,
                              "(H_kv=" + std::to_string(a.kv_num_heads) + ")");
      *g.data = g.t->data;
      *g.dt = g.t->dtype;
      *g.stride = g.t->strides[0];
      sh.spans[sh.n_spans++] = sp;
    }
    if (a.decay.rank != 0 && a.decay.shape[2] != a.kv_num_heads) {
      std::ostringstream m;
      m << kLA << ": decay has shape " << shape_string(a.decay)
        << "; with serving.fused_gating it holds the raw gate projection a, one value per kv "
           "head: expected (B, T, H_kv=" << a.kv_num_heads << ")";
      return invalid(m.str());
    }
  }

  // Aliasing of the outputs against the serving inputs.
  ByteSpan outs[2];
  check_view(kLA, "output", a.output, 3, "", backend, &outs[0]);
  check_view(kLA, "present_state", a.present_state, 4, "", backend, &outs[1]);
  const char* names[2] = {"output", "present_state"};
  LINATTN_RETURN_IF_ERROR(check_index_aliasing(kLA, sh, outs, names, 2));

  const int64_t T = a.query.shape[1];
  const bool has_past = a.past_state.rank != 0;
  const int64_t slots = a.present_state.shape[0];
  const int64_t read_slots = has_past ? a.past_state.shape[0] : slots;
  if (host_backend(backend)) {
    LINATTN_RETURN_IF_ERROR(resolve_plan(kLA, s, sh, T, has_past, slots, read_slots,
                                         has_past ? "past_state" : "present_state", &r.plan));
  }
  r.ix = serving_indices(s, sh, T, has_past, slots, read_slots);
  r.p = p;
  r.value_major = form.value_major;
  r.qk_l2norm = s.qk_l2norm != 0;
  r.qk_l2norm_eps = s.qk_l2norm_eps != 0.f ? s.qk_l2norm_eps : 1e-6f;
  r.fused_gating = gating;
  r.plan.whole_batch = !sh.packed && !sh.pool && s.has_initial_state.rank == 0 &&
                       !form.value_major;
  *out = std::move(r);
  return Status::ok_status();
}

Status check_causal_conv_serving(const linattn_causal_conv_args& a, linattn_backend backend,
                                 ServingCausalConv* out) {
  const linattn_serving_args& s = a.serving;
  if (enum_value(s.state_layout) != 0 || s.qk_l2norm != 0 || s.qk_l2norm_eps != 0.f ||
      s.fused_gating != 0 || s.A_log.rank != 0 || s.dt_bias.rank != 0 ||
      s.checkpoint_interval != 0 || s.checkpoint_indices.rank != 0) {
    return invalid(std::string(kConv) + ": a LinearAttention-only serving field is set "
                   "(state_layout, qk_l2norm, qk_l2norm_eps, fused_gating, A_log, dt_bias, "
                   "checkpoint_interval or checkpoint_indices); the conv takes cu_seqlens, "
                   "state_indices, read_state_indices, has_initial_state, num_accepted_tokens "
                   "and error_flag");
  }
  CausalConvParams p;
  if (a.input.rank != 3) return check_causal_conv_form(a, backend, StateForm{}, &p);
  ServingShape sh;
  LINATTN_RETURN_IF_ERROR(check_serving_views(kConv, s, backend, a.input.shape[0], &sh));
  StateForm form;
  form.rows = sh.pool ? StateForm::kRowsAny : (sh.packed ? sh.N : StateForm::kRowsB);
  form.packed = sh.packed;
  form.form = sh.pool ? " (a state pool: serving.state_indices is given)"
                      : (sh.packed ? " (one row per sequence of serving.cu_seqlens)" : "");
  LINATTN_RETURN_IF_ERROR(check_causal_conv_form(a, backend, form, &p));

  ByteSpan outs[2];
  check_view(kConv, "output", a.output, 3, "", backend, &outs[0]);
  check_view(kConv, "present_state", a.present_state, 3, "", backend, &outs[1]);
  const char* names[2] = {"output", "present_state"};
  LINATTN_RETURN_IF_ERROR(check_index_aliasing(kConv, sh, outs, names, 2));

  ServingCausalConv r;
  const int64_t T = a.channels_last ? a.input.shape[1] : a.input.shape[2];
  const bool has_past = a.past_state.rank != 0;
  const int64_t slots = a.present_state.shape[0];
  const int64_t read_slots = has_past ? a.past_state.shape[0] : slots;
  if (host_backend(backend)) {
    LINATTN_RETURN_IF_ERROR(resolve_plan(kConv, s, sh, T, has_past, slots, read_slots,
                                         has_past ? "past_state" : "present_state", &r.plan));
  }
  r.ix = serving_indices(s, sh, T, has_past, slots, read_slots);
  r.p = p;
  r.plan.whole_batch = false;
  *out = std::move(r);
  return Status::ok_status();
}

}  // namespace linattn::detail
