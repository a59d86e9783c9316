// The rules of SEMANTICS.md, in the order a reader would check them: attributes, then each
// view on its own (view_check.cpp), then the shapes against each other, then dtypes, then
// aliasing of the outputs. The first broken rule is reported.
#include "core/check.hpp"

#include <climits>
#include <cmath>
#include <sstream>

#include "core/view_check.hpp"

namespace linattn::detail {

namespace {

constexpr const char* kLA = "LinearAttention";
constexpr const char* kConv = "CausalConvWithState";

const char* rule_string(linattn_update_rule r) {
  switch (r) {
    case LINATTN_RULE_LINEAR: return "linear";
    case LINATTN_RULE_GATED: return "gated";
    case LINATTN_RULE_DELTA: return "delta";
    case LINATTN_RULE_GATED_DELTA: return "gated_delta";
  }
  return "unknown";
}

// A tensor the caller passed, with the name messages use and the bytes it spans.
struct Operand {
  const char* name;
  const linattn_tensor* t;
  ByteSpan span;
  bool present() const { return t->rank != 0; }
};

Status required(const char* op, const Operand& o, const char* layout) {
  if (o.present()) return Status::ok_status();
  std::ostringstream m;
  m << op << ": " << o.name << " is required but absent (rank 0); expected " << layout;
  return invalid(m.str());
}

// Output `out` against every input: no overlap, except an exact alias of `alias_ok` (the past
// state) which makes the update in place.
Status check_output_aliasing(const char* op, Operand& out, const Operand* inputs, int n_inputs,
                             const Operand* alias_ok, bool* in_place) {
  LINATTN_RETURN_IF_ERROR(check_no_self_overlap(op, out.name, *out.t));
  for (int i = 0; i < n_inputs; ++i) {
    const Operand& in = inputs[i];
    if (!in.present() || !spans_overlap(out.span, in.span)) continue;
    if (alias_ok == &in && same_view(*out.t, *in.t)) {
      if (in_place) *in_place = true;
      continue;
    }
    std::ostringstream m;
    m << op << ": " << out.name << " (shape " << shape_string(*out.t) << ", strides "
      << strides_string(*out.t) << ") overlaps " << in.name << " (shape "
      << shape_string(*in.t) << ", strides " << strides_string(*in.t) << ")";
    if (alias_ok == &in) {
      if (out.t->data != in.t->data) {
        m << " starting " << static_cast<long long>(out.span.begin - in.span.begin)
          << " bytes from it";
      } else if (out.t->dtype != in.t->dtype) {
        m << " with dtype " << dtype_string(out.t->dtype) << " instead of "
          << dtype_string(in.t->dtype);
      }
      m << "; " << out.name << " may alias " << in.name
        << " only exactly (same data pointer, dtype and strides)";
    } else {
      m << "; outputs must not overlap any input";
    }
    return invalid(m.str());
  }
  return Status::ok_status();
}

Status check_outputs_disjoint(const char* op, const Operand& a, const Operand& b) {
  if (!spans_overlap(a.span, b.span)) return Status::ok_status();
  std::ostringstream m;
  m << op << ": " << a.name << " (shape " << shape_string(*a.t) << ") and " << b.name
    << " (shape " << shape_string(*b.t) << ") overlap; the two outputs must be disjoint";
  return invalid(m.str());
}

// One activation dtype shared by a list of operands (absent ones skipped).
Status check_shared_dtype(const char* op, const Operand* ops, int n, const char* group,
                          linattn_backend backend, linattn_dtype* out) {
  const Operand& first = ops[0];
  LINATTN_RETURN_IF_ERROR(check_float_dtype(op, first.name, first.t->dtype, backend));
  for (int i = 1; i < n; ++i) {
    if (!ops[i].present() || ops[i].t->dtype == first.t->dtype) continue;
    std::ostringstream m;
    m << op << ": " << ops[i].name << " has dtype " << dtype_string(ops[i].t->dtype)
      << " but " << first.name << " has dtype " << dtype_string(first.t->dtype) << "; "
      << group << " must share one dtype";
    return invalid(m.str());
  }
  *out = first.t->dtype;
  return Status::ok_status();
}

}  // namespace

Status check_linear_attention_form(const linattn_linear_attention_args& a,
                                   linattn_backend backend, const StateForm& form,
                                   LinearAttentionParams* out) {
  // Attributes.
  const int rule = enum_value(a.update_rule);
  if (rule < LINATTN_RULE_LINEAR || rule > LINATTN_RULE_GATED_DELTA) {
    std::ostringstream m;
    m << kLA << ": update_rule has unknown value " << rule
      << "; expected linear (0), gated (1), delta (2) or gated_delta (3)";
    return invalid(m.str());
  }
  if (a.q_num_heads < 1 || a.kv_num_heads < 1) {
    std::ostringstream m;
    m << kLA << ": q_num_heads=" << a.q_num_heads << " and kv_num_heads=" << a.kv_num_heads
      << "; both head counts must be >= 1";
    return invalid(m.str());
  }
  if (!std::isfinite(a.scale)) {
    std::ostringstream m;
    m << kLA << ": scale is " << a.scale << "; expected a finite number (0 = 1/sqrt(d_k))";
    return invalid(m.str());
  }
  if (a.chunk_size < 0) {
    std::ostringstream m;
    m << kLA << ": chunk_size is " << a.chunk_size << "; expected >= 0 (0 = default 64)";
    return invalid(m.str());
  }
  const bool gated = a.update_rule == LINATTN_RULE_GATED ||
                     a.update_rule == LINATTN_RULE_GATED_DELTA;
  const bool delta = a.update_rule == LINATTN_RULE_DELTA ||
                     a.update_rule == LINATTN_RULE_GATED_DELTA;

  Operand q{"query", &a.query, {}}, k{"key", &a.key, {}}, v{"value", &a.value, {}};
  Operand past{"past_state", &a.past_state, {}}, g{"decay", &a.decay, {}};
  Operand beta{"beta", &a.beta, {}}, o{"output", &a.output, {}};
  Operand pres{"present_state", &a.present_state, {}};

  // Presence.
  LINATTN_RETURN_IF_ERROR(required(kLA, q, "(B, T, H_q*d_k)"));
  LINATTN_RETURN_IF_ERROR(required(kLA, k, "(B, T, n_k*d_k)"));
  LINATTN_RETURN_IF_ERROR(required(kLA, v, "(B, T, H_kv*d_v)"));
  LINATTN_RETURN_IF_ERROR(required(kLA, o, "(B, T, max(H_q, H_kv)*d_v)"));
  LINATTN_RETURN_IF_ERROR(required(kLA, pres, "(B, H_kv, d_k, d_v)"));
  if (gated && !g.present()) {
    return invalid(std::string(kLA) + ": decay is required by update_rule '" +
                   rule_string(a.update_rule) + "' but absent; expected (B, T, H_kv) or "
                   "(B, T, H_kv*d_k)");
  }
  if (delta && !beta.present()) {
    return invalid(std::string(kLA) + ": beta is required by update_rule '" +
                   rule_string(a.update_rule) + "' but absent; expected (B, T, H_kv) or "
                   "(B, T, 1)");
  }
  if (a.strict) {
    for (const Operand* unused : {gated ? nullptr : &g, delta ? nullptr : &beta}) {
      if (unused && unused->present()) {
        return invalid(std::string(kLA) + ": " + unused->name + " (shape " +
                       shape_string(*unused->t) + ") was given but update_rule '" +
                       rule_string(a.update_rule) +
                       "' does not use it; strict mode (ONNX standard) rejects it");
      }
    }
  }

  // Each view on its own.
  LINATTN_RETURN_IF_ERROR(check_view(kLA, q.name, *q.t, 3, "(B, T, H_q*d_k)", backend, &q.span));
  LINATTN_RETURN_IF_ERROR(check_view(kLA, k.name, *k.t, 3, "(B, T, n_k*d_k)", backend, &k.span));
  LINATTN_RETURN_IF_ERROR(check_view(kLA, v.name, *v.t, 3, "(B, T, H_kv*d_v)", backend, &v.span));
  if (past.present()) {
    LINATTN_RETURN_IF_ERROR(
        check_view(kLA, past.name, *past.t, 4, "(B, H_kv, d_k, d_v)", backend, &past.span));
  }
  if (g.present()) {
    LINATTN_RETURN_IF_ERROR(check_view(kLA, g.name, *g.t, 3, "(B, T, H_kv) or (B, T, H_kv*d_k)",
                                       backend, &g.span));
  }
  if (beta.present()) {
    LINATTN_RETURN_IF_ERROR(
        check_view(kLA, beta.name, *beta.t, 3, "(B, T, H_kv) or (B, T, 1)", backend, &beta.span));
  }
  LINATTN_RETURN_IF_ERROR(
      check_view(kLA, o.name, *o.t, 3, "(B, T, max(H_q, H_kv)*d_v)", backend, &o.span));
  LINATTN_RETURN_IF_ERROR(
      check_view(kLA, pres.name, *pres.t, 4, "(B, H_kv, d_k, d_v)", backend, &pres.span));

  // Derived sizes.
  const int64_t Hq = a.q_num_heads, Hkv = a.kv_num_heads;
  const int64_t B = a.query.shape[0], T = a.query.shape[1];
  const int64_t qw = a.query.shape[2], kw = a.key.shape[2], vw = a.value.shape[2];
  if (qw == 0 || qw % Hq != 0) {
    std::ostringstream m;
    m << kLA << ": query has shape " << shape_string(a.query)
      << "; expected (B, T, H_q*d_k) with H_q=q_num_heads=" << Hq << ", and " << qw
      << " is not a positive multiple of " << Hq;
    return invalid(m.str());
  }
  const int64_t dk = qw / Hq;
  if (vw == 0 || vw % Hkv != 0) {
    std::ostringstream m;
    m << kLA << ": value has shape " << shape_string(a.value)
      << "; expected (B, T, H_kv*d_v) with H_kv=kv_num_heads=" << Hkv << ", and " << vw
      << " is not a positive multiple of " << Hkv;
    return invalid(m.str());
  }
  const int64_t dv = vw / Hkv;
  if (dk > INT32_MAX || dv > INT32_MAX) {
    std::ostringstream m;
    m << kLA << ": head sizes d_k=" << dk << " (query.shape[2]=" << qw << " / q_num_heads="
      << Hq << ") and d_v=" << dv << " must fit int32";
    return invalid(m.str());
  }
  // B and T of every token-indexed input against the query's.
  for (const Operand* x : {&k, &v, &g, &beta, &o}) {
    if (!x->present()) continue;
    if (x->t->shape[0] != B || x->t->shape[1] != T) {
      std::ostringstream m;
      m << kLA << ": " << x->name << " has shape " << shape_string(*x->t) << "; expected (B="
        << B << ", T=" << T << ", ...) as query " << shape_string(a.query);
      return invalid(m.str());
    }
  }
  if (kw == 0 || kw % dk != 0) {
    std::ostringstream m;
    m << kLA << ": key has shape " << shape_string(a.key) << "; expected (B=" << B
      << ", T=" << T << ", n_k*d_k) with d_k=" << dk << " (query.shape[2]=" << qw
      << " / q_num_heads=" << Hq << "), and " << kw << " is not a positive multiple of " << dk;
    return invalid(m.str());
  }
  const int64_t nk = kw / dk;
  // Head counts.
  if (Hq % Hkv != 0 && Hkv % Hq != 0) {
    std::ostringstream m;
    m << kLA << ": q_num_heads=" << Hq << " and kv_num_heads=" << Hkv
      << ": one must divide the other (GQA needs H_q % H_kv == 0, inverse GQA H_kv % H_q == 0)";
    return invalid(m.str());
  }
  if (Hkv % nk != 0) {
    std::ostringstream m;
    m << kLA << ": key has shape " << shape_string(a.key) << ", i.e. n_k=" << nk
      << " key heads of d_k=" << dk << "; n_k must divide kv_num_heads=" << Hkv;
    return invalid(m.str());
  }
  const int64_t Hout = Hq > Hkv ? Hq : Hkv;
  bool decay_per_key_dim = false, beta_shared = false;
  if (g.present()) {
    const int64_t w = a.decay.shape[2];
    if (w == Hkv * dk) {
      decay_per_key_dim = true;  // also when d_k = 1 and both readings match
    } else if (w != Hkv) {
      std::ostringstream m;
      m << kLA << ": decay has shape " << shape_string(a.decay) << "; expected (B=" << B
        << ", T=" << T << ", H_kv=" << Hkv << ") or (B=" << B << ", T=" << T
        << ", H_kv*d_k=" << Hkv * dk << ")";
      return invalid(m.str());
    }
  }
  if (beta.present()) {
    const int64_t w = a.beta.shape[2];
    if (w != Hkv && w != 1) {
      std::ostringstream m;
      m << kLA << ": beta has shape " << shape_string(a.beta) << "; expected (B=" << B
        << ", T=" << T << ", H_kv=" << Hkv << ") or (B=" << B << ", T=" << T << ", 1)";
      return invalid(m.str());
    }
    beta_shared = w != Hkv;
  }
  if (a.output.shape[2] != Hout * dv) {
    std::ostringstream m;
    m << kLA << ": output has shape " << shape_string(a.output) << "; expected (B=" << B
      << ", T=" << T << ", max(H_q, H_kv)*d_v=" << Hout * dv << ") with H_q=" << Hq
      << ", H_kv=" << Hkv << ", d_v=" << dv;
    return invalid(m.str());
  }
  if (form.packed && B != 1) {
    std::ostringstream m;
    m << kLA << ": query has shape " << shape_string(a.query)
      << "; with serving.cu_seqlens the tokens of all sequences are packed: expected (1, "
         "total_T, H_q*d_k)";
    return invalid(m.str());
  }
  for (const Operand* s : {&past, &pres}) {
    if (!s->present()) continue;
    const int64_t* d = s->t->shape;
    const int64_t rows = form.rows == StateForm::kRowsB ? B : form.rows;
    const int64_t r2 = form.value_major ? dv : dk, r3 = form.value_major ? dk : dv;
    if ((rows != StateForm::kRowsAny && d[0] != rows) || d[1] != Hkv || d[2] != r2 ||
        d[3] != r3) {
      std::ostringstream m;
      m << kLA << ": " << s->name << " has shape " << shape_string(*s->t) << "; expected (";
      if (form.rows == StateForm::kRowsB) m << "B=" << B;
      else if (form.rows == StateForm::kRowsAny) m << "slots";
      else m << "N=" << form.rows;
      m << ", H_kv=" << Hkv << (form.value_major ? ", d_v=" : ", d_k=") << r2
        << (form.value_major ? ", d_k=" : ", d_v=") << r3 << ")" << form.form;
      return invalid(m.str());
    }
  }

  // Dtypes.
  linattn_dtype act = LINATTN_FLOAT32;
  const Operand acts[] = {q, k, v, g, beta, o};
  LINATTN_RETURN_IF_ERROR(check_shared_dtype(kLA, acts, 6,
                                             "query, key, value, decay, beta and output",
                                             backend, &act));
  if (past.present()) {
    LINATTN_RETURN_IF_ERROR(check_float_dtype(kLA, past.name, a.past_state.dtype, backend));
  }
  LINATTN_RETURN_IF_ERROR(check_float_dtype(kLA, pres.name, a.present_state.dtype, backend));

  // Aliasing: outputs never overlap inputs (present_state may be past_state exactly).
  bool in_place = false;
  const Operand inputs[] = {q, k, v, past, g, beta};
  LINATTN_RETURN_IF_ERROR(check_output_aliasing(kLA, o, inputs, 6, nullptr, nullptr));
  LINATTN_RETURN_IF_ERROR(check_output_aliasing(kLA, pres, inputs, 6, &inputs[3], &in_place));
  LINATTN_RETURN_IF_ERROR(check_outputs_disjoint(kLA, o, pres));

  // Params.
  LinearAttentionParams p;
  p.B = B;
  p.T = T;
  p.Hq = static_cast<int32_t>(Hq);
  p.Hk = static_cast<int32_t>(nk);
  p.Hkv = static_cast<int32_t>(Hkv);
  p.Hout = static_cast<int32_t>(Hout);
  p.dk = static_cast<int32_t>(dk);
  p.dv = static_cast<int32_t>(dv);
  p.rule = a.update_rule;
  p.gated = gated;
  p.delta = delta;
  p.scale = a.scale != 0.f ? a.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(dk)));
  p.chunk_size = a.chunk_size != 0 ? a.chunk_size : 64;
  p.decay_per_key_dim = gated && decay_per_key_dim;
  p.beta_shared = delta && beta_shared;
  p.act_dtype = act;
  p.past_dtype = past.present() ? a.past_state.dtype : LINATTN_FLOAT32;
  p.present_dtype = a.present_state.dtype;
  p.q = a.query.data;   p.q_sb = a.query.strides[0]; p.q_st = a.query.strides[1];
  p.k = a.key.data;     p.k_sb = a.key.strides[0];   p.k_st = a.key.strides[1];
  p.v = a.value.data;   p.v_sb = a.value.strides[0]; p.v_st = a.value.strides[1];
  if (gated) {
    p.decay = a.decay.data;
    p.g_sb = a.decay.strides[0];
    p.g_st = a.decay.strides[1];
  }
  if (delta) {
    p.beta = a.beta.data;
    p.beta_sb = a.beta.strides[0];
    p.beta_st = a.beta.strides[1];
  }
  p.out = a.output.data; p.o_sb = a.output.strides[0]; p.o_st = a.output.strides[1];
  if (past.present()) {
    p.past = a.past_state.data;
    p.past_sb = a.past_state.strides[0];
    p.past_sh = a.past_state.strides[1];
    p.past_sk = a.past_state.strides[2];
  }
  p.present = a.present_state.data;
  p.pres_sb = a.present_state.strides[0];
  p.pres_sh = a.present_state.strides[1];
  p.pres_sk = a.present_state.strides[2];
  p.in_place = in_place;
  *out = p;
  return Status::ok_status();
}

Status check_causal_conv_form(const linattn_causal_conv_args& a, linattn_backend backend,
                              const StateForm& form, CausalConvParams* out) {
  const int act = enum_value(a.activation);
  if (act != LINATTN_ACTIVATION_NONE && act != LINATTN_ACTIVATION_SILU) {
    std::ostringstream m;
    m << kConv << ": activation has unknown value " << act
      << "; expected none (0) or silu/swish (1)";
    return invalid(m.str());
  }
  const bool cl = a.channels_last != 0;
  const char* in_layout = cl ? "(B, L, C) (channels_last)" : "(B, C, L)";
  Operand x{"input", &a.input, {}}, w{"weight", &a.weight, {}}, bias{"bias", &a.bias, {}};
  Operand past{"past_state", &a.past_state, {}}, y{"output", &a.output, {}};
  Operand pres{"present_state", &a.present_state, {}};

  LINATTN_RETURN_IF_ERROR(required(kConv, x, in_layout));
  LINATTN_RETURN_IF_ERROR(required(kConv, w, "(C, 1, k)"));
  LINATTN_RETURN_IF_ERROR(required(kConv, y, "the shape of input"));
  LINATTN_RETURN_IF_ERROR(required(kConv, pres, "(B, C, k-1)"));

  LINATTN_RETURN_IF_ERROR(check_view(kConv, x.name, *x.t, 3, in_layout, backend, &x.span));
  LINATTN_RETURN_IF_ERROR(check_view(kConv, w.name, *w.t, 3, "(C, 1, k)", backend, &w.span));
  if (bias.present()) {
    LINATTN_RETURN_IF_ERROR(check_view(kConv, bias.name, *bias.t, 1, "(C)", backend, &bias.span));
  }
  if (past.present()) {
    LINATTN_RETURN_IF_ERROR(
        check_view(kConv, past.name, *past.t, 3, "(B, C, k-1)", backend, &past.span));
  }
  LINATTN_RETURN_IF_ERROR(check_view(kConv, y.name, *y.t, 3, in_layout, backend, &y.span));
  LINATTN_RETURN_IF_ERROR(
      check_view(kConv, pres.name, *pres.t, 3, "(B, C, k-1)", backend, &pres.span));

  const int64_t B = a.input.shape[0];
  const int64_t C = cl ? a.input.shape[2] : a.input.shape[1];
  const int64_t L = cl ? a.input.shape[1] : a.input.shape[2];
  const int64_t K = a.weight.shape[2];
  if (a.weight.shape[0] != C || a.weight.shape[1] != 1 || K < 1) {
    std::ostringstream m;
    m << kConv << ": weight has shape " << shape_string(a.weight) << "; expected (C=" << C
      << ", 1, k) with k >= 1 (depthwise: one filter per channel of input "
      << shape_string(a.input) << ")";
    return invalid(m.str());
  }
  if (K > INT32_MAX) {
    std::ostringstream m;
    m << kConv << ": weight has shape " << shape_string(a.weight)
      << "; the kernel width k must fit int32";
    return invalid(m.str());
  }
  if (bias.present() && a.bias.shape[0] != C) {
    std::ostringstream m;
    m << kConv << ": bias has shape " << shape_string(a.bias) << "; expected (C=" << C << ")";
    return invalid(m.str());
  }
  if (form.packed && B != 1) {
    std::ostringstream m;
    m << kConv << ": input has shape " << shape_string(a.input)
      << "; with serving.cu_seqlens the tokens of all sequences are packed: expected "
      << (cl ? "(1, total_T, C)" : "(1, C, total_T)");
    return invalid(m.str());
  }
  for (const Operand* s : {&past, &pres}) {
    if (!s->present()) continue;
    const int64_t* d = s->t->shape;
    const int64_t rows = form.rows == StateForm::kRowsB ? B : form.rows;
    if ((rows != StateForm::kRowsAny && d[0] != rows) || d[1] != C || d[2] != K - 1) {
      std::ostringstream m;
      m << kConv << ": " << s->name << " has shape " << shape_string(*s->t) << "; expected (";
      if (form.rows == StateForm::kRowsB) m << "B=" << B;
      else if (form.rows == StateForm::kRowsAny) m << "slots";
      else m << "N=" << form.rows;
      m << ", C=" << C << ", k-1=" << K - 1 << ")" << form.form;
      return invalid(m.str());
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (a.output.shape[i] != a.input.shape[i]) {
      std::ostringstream m;
      m << kConv << ": output has shape " << shape_string(a.output) << "; expected "
        << shape_string(a.input) << ", the shape of input";
      return invalid(m.str());
    }
  }

  linattn_dtype adt = LINATTN_FLOAT32;
  const Operand acts[] = {x, w, bias, y};
  LINATTN_RETURN_IF_ERROR(
      check_shared_dtype(kConv, acts, 4, "input, weight, bias and output", backend, &adt));
  if (past.present()) {
    LINATTN_RETURN_IF_ERROR(check_float_dtype(kConv, past.name, a.past_state.dtype, backend));
  }
  LINATTN_RETURN_IF_ERROR(check_float_dtype(kConv, pres.name, a.present_state.dtype, backend));

  bool in_place = false;
  const Operand inputs[] = {x, w, bias, past};
  LINATTN_RETURN_IF_ERROR(check_output_aliasing(kConv, y, inputs, 4, nullptr, nullptr));
  LINATTN_RETURN_IF_ERROR(check_output_aliasing(kConv, pres, inputs, 4, &inputs[3], &in_place));
  LINATTN_RETURN_IF_ERROR(check_outputs_disjoint(kConv, y, pres));

  CausalConvParams p;
  p.B = B;
  p.C = C;
  p.L = L;
  p.K = static_cast<int32_t>(K);
  p.silu = a.activation == LINATTN_ACTIVATION_SILU;
  p.channels_last = cl;
  p.act_dtype = adt;
  p.past_dtype = past.present() ? a.past_state.dtype : LINATTN_FLOAT32;
  p.present_dtype = a.present_state.dtype;
  // Memory order (B, L, C) when channels_last; the params are always in logical (b, c, l).
  const int ci = cl ? 2 : 1, li = cl ? 1 : 2;
  p.x = a.input.data;
  p.x_sb = a.input.strides[0];
  p.x_sc = a.input.strides[ci];
  p.x_sl = a.input.strides[li];
  p.y = a.output.data;
  p.y_sb = a.output.strides[0];
  p.y_sc = a.output.strides[ci];
  p.y_sl = a.output.strides[li];
  p.w = a.weight.data;
  p.w_sc = a.weight.strides[0];
  p.w_sk = a.weight.strides[2];
  if (bias.present()) {
    p.bias = a.bias.data;
    p.bias_sc = a.bias.strides[0];
  }
  if (past.present()) {
    p.past = a.past_state.data;
    p.past_sb = a.past_state.strides[0];
    p.past_sc = a.past_state.strides[1];
  }
  p.present = a.present_state.data;
  p.pres_sb = a.present_state.strides[0];
  p.pres_sc = a.present_state.strides[1];
  p.in_place = in_place;
  *out = p;
  return Status::ok_status();
}

Status check_linear_attention(const linattn_linear_attention_args& a, linattn_backend backend,
                              LinearAttentionParams* out) {
  if (serving_requested(a.serving)) {
    return invalid(std::string(kLA) + ": serving fields are set; this entry point checks the "
                   "dense operator only (internal: use check_linear_attention_serving)");
  }
  return check_linear_attention_form(a, backend, StateForm{}, out);
}

Status check_causal_conv(const linattn_causal_conv_args& a, linattn_backend backend,
                         CausalConvParams* out) {
  if (serving_requested(a.serving)) {
    return invalid(std::string(kConv) + ": serving fields are set; this entry point checks the "
                   "dense operator only (internal: use check_causal_conv_serving)");
  }
  return check_causal_conv_form(a, backend, StateForm{}, out);
}

bool serving_requested(const linattn_serving_args& s) {
  for (const linattn_tensor* t :
       {&s.cu_seqlens, &s.state_indices, &s.read_state_indices, &s.has_initial_state,
        &s.num_accepted_tokens, &s.error_flag, &s.A_log, &s.dt_bias, &s.checkpoint_indices})
    if (t->rank != 0) return true;
  return enum_value(s.state_layout) != 0 || s.qk_l2norm != 0 || s.qk_l2norm_eps != 0.f ||
         s.fused_gating != 0 || s.checkpoint_interval != 0;
}

}  // namespace linattn::detail
