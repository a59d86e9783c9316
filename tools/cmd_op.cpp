// `linattn op linear-attention|causal-conv`: one operator call on .npy inputs (named like the
// ONNX inputs), outputs written as DIR/output.npy and DIR/present_state.npy.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli_options.hpp"
#include "commands.hpp"
#include "npy.hpp"
#include "tensor_data.hpp"

namespace linattn::tool {
namespace {

struct OpOptions {
  std::string op;
  // LinearAttention inputs and attributes.
  std::string query, key, value, decay, beta;
  int q_num_heads = 0, kv_num_heads = 0, chunk_size = 0;
  std::string update_rule = "gated_delta";
  double scale = 0.0;
  bool strict = false;
  // CausalConvWithState inputs and attributes.
  std::string input, weight, bias;
  std::string activation = "none";
  bool channels_last = false;
  // Both.
  std::string past_state;
  std::string state_dtype;  // empty: past_state's dtype, or float32
  std::string device = "cpu";
  int threads = 0;
  std::string out_dir;
};

const char* kEpilog =
    ".npy files: little-endian '<f4' (float32), '<f2' (float16) or bfloat16, C order.\n"
    "NumPy has no bfloat16; bfloat16 arrays are read from and written as descr '<V2' (2-byte\n"
    "void), which is how ml_dtypes saves them (the descr 'bfloat16' is read too). In NumPy:\n"
    "  np.save('q.npy', q_bf16)   and   np.load('output.npy').view(ml_dtypes.bfloat16).\n"
    "Outputs: DIR/output.npy (the activations' dtype) and DIR/present_state.npy (--state-dtype,\n"
    "else past_state's dtype, else float32). Exit status 1 on any error, with the library's\n"
    "message naming the input and the expected and actual shapes.";

CommandSpec make_spec(OpOptions* o) {
  CommandSpec s;
  s.usage = "linattn op linear-attention|causal-conv [options]";
  s.description =
      "Runs one operator on .npy inputs, as ONNX Runtime's com.microsoft LinearAttention and\n"
      "CausalConvWithState compute it, and writes its two outputs as .npy files.";
  s.options = {
      string_option("--query", "FILE", "linear-attention: query (B, T, H_q*d_k)", &o->query),
      string_option("--key", "FILE", "linear-attention: key (B, T, n_k*d_k)", &o->key),
      string_option("--value", "FILE", "linear-attention: value (B, T, H_kv*d_v)", &o->value),
      string_option("--decay", "FILE",
                    "linear-attention: decay (B, T, H_kv) or (B, T, H_kv*d_k), optional",
                    &o->decay),
      string_option("--beta", "FILE", "linear-attention: beta (B, T, H_kv) or (B, T, 1), optional",
                    &o->beta),
      int_option("--q-num-heads", "N", "linear-attention: q_num_heads (required)",
                 &o->q_num_heads, 1),
      int_option("--kv-num-heads", "N", "linear-attention: kv_num_heads (required)",
                 &o->kv_num_heads, 1),
      choice_option("--update-rule", {"linear", "gated", "delta", "gated_delta"},
                    "linear-attention: update_rule (default gated_delta)", &o->update_rule),
      float_option("--scale", "X", "linear-attention: scale (default 0 = 1/sqrt(d_k))",
                   &o->scale),
      int_option("--chunk-size", "N", "linear-attention: chunk_size hint (default 64)",
                 &o->chunk_size, 0),
      flag_option("--strict",
                  "linear-attention: ONNX-standard mode (reject decay/beta the rule ignores)",
                  &o->strict),
      string_option("--input", "FILE", "causal-conv: input (B, C, L), or (B, L, C)", &o->input),
      string_option("--weight", "FILE", "causal-conv: weight (C, 1, k)", &o->weight),
      string_option("--bias", "FILE", "causal-conv: bias (C), optional", &o->bias),
      choice_option("--activation", {"none", "silu", "swish"},
                    "causal-conv: activation (default none)", &o->activation),
      flag_option("--channels-last", "causal-conv: input and output are (B, L, C)",
                  &o->channels_last),
      string_option("--past-state", "FILE",
                    "past_state, optional: (B, H_kv, d_k, d_v) or conv (B, C, k-1)",
                    &o->past_state),
      choice_option("--state-dtype", {"f32", "f16", "bf16"},
                    "present_state dtype (default: past_state's, else f32)", &o->state_dtype),
      choice_option("--device", {"cpu", "cuda", "auto"}, "backend (default cpu)", &o->device),
      int_option("--threads", "N", "CPU threads (default 0 = all)", &o->threads, 0),
      string_option("--out", "DIR", "directory for output.npy and present_state.npy (required)",
                    &o->out_dir),
  };
  s.epilog = kEpilog;
  return s;
}

// An input tensor loaded from .npy, or absent when no file was named.
struct Input {
  std::string path;
  Tensor t;
  bool present = false;
};

bool load_input(const std::string& path, const char* what, bool required, Input* in,
                linattn_memory memory) {
  in->path = path;
  if (path.empty()) {
    if (required) {
      std::fprintf(stderr, "error: the %s input is required (--%s FILE)\n", what, what);
      return false;
    }
    return true;
  }
  std::string err;
  if (!npy::read(path, &in->t.host, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return false;
  }
  const size_t rank = in->t.host.shape.size();
  if (rank < 1 || rank > LINATTN_MAX_RANK) {
    std::fprintf(stderr, "error: %s: %s has rank %zu; operator inputs have rank 1 to %d\n",
                 path.c_str(), what, rank, LINATTN_MAX_RANK);
    return false;
  }
  if (!in->t.stage(memory, &err)) {
    std::fprintf(stderr, "error: %s: %s\n", path.c_str(), err.c_str());
    return false;
  }
  in->present = true;
  return true;
}

linattn_tensor view_or_absent(Input& in) { return in.present ? in.t.view() : absent(); }

int64_t dim(const Input& in, size_t i) {
  return in.present && in.t.host.shape.size() > i ? in.t.host.shape[i] : 0;
}

// Allocates an output, poisoned with NaN so that unwritten elements cannot pass as results.
bool make_output(linattn_dtype dtype, const std::vector<int64_t>& shape, linattn_memory memory,
                 Tensor* t) {
  std::string err;
  if (!t->create(dtype, shape, &err)) {
    std::fprintf(stderr, "error: output: %s\n", err.c_str());
    return false;
  }
  t->fill(NAN);
  if (!t->stage(memory, &err)) {
    std::fprintf(stderr, "error: output: %s\n", err.c_str());
    return false;
  }
  return true;
}

bool write_outputs(const std::string& dir, Tensor* output, Tensor* present) {
  std::string err;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    std::fprintf(stderr, "error: cannot create %s: %s\n", dir.c_str(), ec.message().c_str());
    return false;
  }
  if (!output->download(&err) || !present->download(&err)) {
    std::fprintf(stderr, "error: reading results back: %s\n", err.c_str());
    return false;
  }
  if (!npy::write(dir + "/output.npy", output->host, &err) ||
      !npy::write(dir + "/present_state.npy", present->host, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return false;
  }
  return true;
}

linattn_dtype state_dtype(const OpOptions& o, const Input& past) {
  linattn_dtype d = LINATTN_FLOAT32;
  if (!o.state_dtype.empty()) parse_dtype(o.state_dtype, &d);
  else if (past.present) d = past.t.host.dtype;
  return d;
}

// A size for an output dimension derived from input sizes when the division is exact; 0
// otherwise (the call then fails validation with a message, before anything is written).
int64_t exact_div(int64_t a, int64_t b) { return b > 0 && a % b == 0 ? a / b : 0; }

int run_linear_attention(const OpOptions& o, const DeviceChoice& dev, Context& ctx) {
  if (o.q_num_heads <= 0 || o.kv_num_heads <= 0) {
    std::fprintf(stderr, "error: --q-num-heads and --kv-num-heads are required\n");
    return kExitUsage;
  }
  Input q, k, v, past, decay, beta;
  if (!load_input(o.query, "query", true, &q, dev.memory) ||
      !load_input(o.key, "key", true, &k, dev.memory) ||
      !load_input(o.value, "value", true, &v, dev.memory) ||
      !load_input(o.past_state, "past-state", false, &past, dev.memory) ||
      !load_input(o.decay, "decay", false, &decay, dev.memory) ||
      !load_input(o.beta, "beta", false, &beta, dev.memory))
    return kExitFailure;

  const int64_t B = dim(q, 0), T = dim(q, 1);
  const int64_t d_k = exact_div(dim(q, 2), o.q_num_heads);
  const int64_t d_v = exact_div(dim(v, 2), o.kv_num_heads);
  const int64_t h_out = std::max(o.q_num_heads, o.kv_num_heads);
  const bool sane = d_k > 0 && d_v > 0;
  Tensor output, present;
  if (!make_output(q.t.host.dtype, {B, T, sane ? h_out * d_v : 0}, dev.memory, &output) ||
      !make_output(state_dtype(o, past), {B, o.kv_num_heads, sane ? d_k : 0, d_v}, dev.memory,
                   &present))
    return kExitFailure;

  LinearAttentionArgs a = default_linear_attention_args();
  a.q_num_heads = o.q_num_heads;
  a.kv_num_heads = o.kv_num_heads;
  if (linattn_update_rule_from_string(o.update_rule.c_str(), &a.update_rule) != LINATTN_OK) {
    std::fprintf(stderr, "error: %s\n", linattn_last_error());
    return kExitUsage;
  }
  a.scale = static_cast<float>(o.scale);
  a.chunk_size = o.chunk_size;
  a.strict = o.strict ? 1 : 0;
  a.query = view_or_absent(q);
  a.key = view_or_absent(k);
  a.value = view_or_absent(v);
  a.past_state = view_or_absent(past);
  a.decay = view_or_absent(decay);
  a.beta = view_or_absent(beta);
  a.output = output.view();
  a.present_state = present.view();
  Status s = linear_attention(ctx, a);
  std::string err;
  if (s.ok() && !device_synchronize(&err)) s = Status(LINATTN_ERROR_DEVICE, err);
  if (!s.ok()) {
    std::fprintf(stderr, "error: LinearAttention: %s\n", s.to_string().c_str());
    return kExitFailure;
  }
  return write_outputs(o.out_dir, &output, &present) ? kExitOk : kExitFailure;
}

int run_causal_conv(const OpOptions& o, const DeviceChoice& dev, Context& ctx) {
  Input x, w, bias, past;
  if (!load_input(o.input, "input", true, &x, dev.memory) ||
      !load_input(o.weight, "weight", true, &w, dev.memory) ||
      !load_input(o.bias, "bias", false, &bias, dev.memory) ||
      !load_input(o.past_state, "past-state", false, &past, dev.memory))
    return kExitFailure;
  const int64_t B = dim(x, 0);
  const int64_t C = o.channels_last ? dim(x, 2) : dim(x, 1);
  const int64_t k = dim(w, 2);
  Tensor output, present;
  if (!make_output(x.t.host.dtype, x.t.host.shape, dev.memory, &output) ||
      !make_output(state_dtype(o, past), {B, C, k > 0 ? k - 1 : 0}, dev.memory, &present))
    return kExitFailure;
  CausalConvArgs a = default_causal_conv_args();
  if (linattn_activation_from_string(o.activation.c_str(), &a.activation) != LINATTN_OK) {
    std::fprintf(stderr, "error: %s\n", linattn_last_error());
    return kExitUsage;
  }
  a.channels_last = o.channels_last ? 1 : 0;
  a.input = view_or_absent(x);
  a.weight = view_or_absent(w);
  a.bias = view_or_absent(bias);
  a.past_state = view_or_absent(past);
  a.output = output.view();
  a.present_state = present.view();
  Status s = causal_conv(ctx, a);
  std::string err;
  if (s.ok() && !device_synchronize(&err)) s = Status(LINATTN_ERROR_DEVICE, err);
  if (!s.ok()) {
    std::fprintf(stderr, "error: CausalConvWithState: %s\n", s.to_string().c_str());
    return kExitFailure;
  }
  return write_outputs(o.out_dir, &output, &present) ? kExitOk : kExitFailure;
}

}  // namespace

int op_main(int argc, char** argv, int first) {
  OpOptions o;
  CommandSpec spec = make_spec(&o);
  if (first < argc && argv[first][0] != '-') o.op = argv[first++];
  switch (parse_command(spec, argc, argv, first)) {
    case ParseResult::kHelp: return kExitOk;
    case ParseResult::kError: return kExitUsage;
    case ParseResult::kOk: break;
  }
  if (o.op != "linear-attention" && o.op != "causal-conv") {
    std::fprintf(stderr, "error: name the operator: linattn op linear-attention|causal-conv "
                         "(see linattn op --help)\n");
    return kExitUsage;
  }
  if (o.out_dir.empty()) {
    std::fprintf(stderr, "error: --out DIR is required\n");
    return kExitUsage;
  }
  DeviceChoice dev;
  std::string err;
  if (!resolve_device(o.device, &dev, &err)) {
    std::fprintf(stderr, "error: %s\n", err.c_str());
    return kExitFailure;
  }
  Context ctx;
  if (!open_context(dev.backend, o.threads, &ctx)) return kExitFailure;
  return o.op == "linear-attention" ? run_linear_attention(o, dev, ctx)
                                    : run_causal_conv(o, dev, ctx);
}

}  // namespace linattn::tool
