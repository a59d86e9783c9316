#include "onnx_pb.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "linattn/linattn.hpp"

#if defined(LINATTN_WITH_CUDA)
#include <cuda_runtime.h>
#endif

namespace linattn::test::onnx {
namespace {

// ---- Protobuf wire format ----------------------------------------------------------------

enum WireType { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class Reader {
 public:
  Reader(const unsigned char* p, size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }

  bool varint(uint64_t* v) {
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return false;
      const unsigned char b = *p_++;
      r |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;  // more than 10 bytes
  }
  bool fixed32(uint32_t* v) {
    if (end_ - p_ < 4) return false;
    std::memcpy(v, p_, 4);
    p_ += 4;
    return true;
  }
  bool fixed64(uint64_t* v) {
    if (end_ - p_ < 8) return false;
    std::memcpy(v, p_, 8);
    p_ += 8;
    return true;
  }
  bool bytes(const unsigned char** data, size_t* n) {
    uint64_t len;
    if (!varint(&len) || len > static_cast<uint64_t>(end_ - p_)) return false;
    *data = p_;
    *n = static_cast<size_t>(len);
    p_ += len;
    return true;
  }
  bool tag(uint32_t* field, uint32_t* wire) {
    uint64_t t;
    if (!varint(&t) || (t >> 3) == 0 || (t >> 3) > 0x1fffffff) return false;
    *field = static_cast<uint32_t>(t >> 3);
    *wire = static_cast<uint32_t>(t & 7);
    return true;
  }
  bool skip(uint32_t wire) {
    uint64_t v;
    uint32_t v32;
    const unsigned char* d;
    size_t n;
    switch (wire) {
      case kVarint: return varint(&v);
      case kFixed64: return fixed64(&v);
      case kLengthDelimited: return bytes(&d, &n);
      case kFixed32: return fixed32(&v32);
      default: return false;  // groups are not used by ONNX
    }
  }

 private:
  const unsigned char* p_;
  const unsigned char* end_;
};

bool fail(std::string* error, const std::string& what) {
  if (error) *error = what;
  return false;
}

// A repeated scalar field, packed (one length-delimited run) or not (one value per tag).
template <class F>
bool repeated(Reader& r, uint32_t wire, uint32_t element_wire, F&& add) {
  auto one = [&](Reader& in) -> bool {
    if (element_wire == kVarint) {
      uint64_t v;
      if (!in.varint(&v)) return false;
      add(v);
    } else if (element_wire == kFixed32) {
      uint32_t v;
      if (!in.fixed32(&v)) return false;
      add(v);
    } else {
      uint64_t v;
      if (!in.fixed64(&v)) return false;
      add(v);
    }
    return true;
  };
  if (wire == kLengthDelimited) {
    const unsigned char* d;
    size_t n;
    if (!r.bytes(&d, &n)) return false;
    Reader packed(d, n);
    while (!packed.done())
      if (!one(packed)) return false;
    return true;
  }
  if (wire != element_wire) return false;
  return one(r);
}

bool string_field(Reader& r, uint32_t wire, std::string* out) {
  const unsigned char* d;
  size_t n;
  if (wire != kLengthDelimited || !r.bytes(&d, &n)) return false;
  out->assign(reinterpret_cast<const char*>(d), n);
  return true;
}

size_t element_size(int32_t data_type) {
  switch (data_type) {
    case kFloat: case kInt32: return 4;
    case kFloat16: case kBFloat16: return 2;
    case kInt64: case kDouble: return 8;
    default: return 0;
  }
}

template <class T>
void append(std::vector<unsigned char>* bytes, T v) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));
  bytes->insert(bytes->end(), b, b + sizeof(T));
}

bool read_file(const std::string& path, std::vector<unsigned char>* out, std::string* error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return fail(error, path + ": cannot open");
  out->assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  return true;
}

bool parse_attribute(const unsigned char* data, size_t size, Attribute* a) {
  Reader r(data, size);
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return false;
    uint64_t v;
    uint32_t v32;
    switch (field) {
      case 1:
        if (!string_field(r, wire, &a->name)) return false;
        break;
      case 2:
        if (wire != kFixed32 || !r.fixed32(&v32)) return false;
        std::memcpy(&a->f, &v32, 4);
        break;
      case 3:
        if (wire != kVarint || !r.varint(&v)) return false;
        a->i = static_cast<int64_t>(v);
        break;
      case 4:
        if (!string_field(r, wire, &a->s)) return false;
        break;
      case 20:
        if (wire != kVarint || !r.varint(&v)) return false;
        a->type = static_cast<int32_t>(v);
        break;
      default:
        if (!r.skip(wire)) return false;
    }
  }
  return true;
}

bool parse_node(const unsigned char* data, size_t size, Node* node) {
  Reader r(data, size);
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return false;
    std::string s;
    const unsigned char* d;
    size_t n;
    switch (field) {
      case 1:
        if (!string_field(r, wire, &s)) return false;
        node->inputs.push_back(s);
        break;
      case 2:
        if (!string_field(r, wire, &s)) return false;
        node->outputs.push_back(s);
        break;
      case 3:
        if (!string_field(r, wire, &node->name)) return false;
        break;
      case 4:
        if (!string_field(r, wire, &node->op_type)) return false;
        break;
      case 5: {
        Attribute a;
        if (wire != kLengthDelimited || !r.bytes(&d, &n) || !parse_attribute(d, n, &a))
          return false;
        node->attributes[a.name] = a;
        break;
      }
      case 7:
        if (!string_field(r, wire, &node->domain)) return false;
        break;
      default:
        if (!r.skip(wire)) return false;
    }
  }
  return true;
}

// Submessage `field` of a message, or false when absent or malformed.
bool find_message(const unsigned char* data, size_t size, uint32_t wanted,
                  const unsigned char** out, size_t* out_size) {
  Reader r(data, size);
  bool found = false;
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return false;
    if (field == wanted && wire == kLengthDelimited) {
      if (!r.bytes(out, out_size)) return false;
      found = true;  // the last occurrence wins, as protobuf merges
    } else if (!r.skip(wire)) {
      return false;
    }
  }
  return found;
}

}  // namespace

int64_t TensorProto::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

bool TensorProto::dtype(linattn_dtype* out) const {
  switch (data_type) {
    case kFloat: *out = LINATTN_FLOAT32; return true;
    case kFloat16: *out = LINATTN_FLOAT16; return true;
    case kBFloat16: *out = LINATTN_BFLOAT16; return true;
    case kDouble: *out = LINATTN_FLOAT64; return true;
    case kInt32: *out = LINATTN_INT32; return true;
    case kInt64: *out = LINATTN_INT64; return true;
    default: return false;
  }
}

namespace {
double half_to_double(uint16_t h) {
  const int exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0) v = std::ldexp(double(mant), -24);
  else if (exp == 31) v = mant ? std::numeric_limits<double>::quiet_NaN()
                               : std::numeric_limits<double>::infinity();
  else v = std::ldexp(double(mant | 0x400), exp - 25);
  return (h & 0x8000) ? -v : v;
}
double bf16_to_double(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
double element_as_double(const unsigned char* p, int32_t data_type) {
  switch (data_type) {
    case kFloat: { float f; std::memcpy(&f, p, 4); return f; }
    case kDouble: { double d; std::memcpy(&d, p, 8); return d; }
    case kFloat16: { uint16_t h; std::memcpy(&h, p, 2); return half_to_double(h); }
    case kBFloat16: { uint16_t h; std::memcpy(&h, p, 2); return bf16_to_double(h); }
    case kInt32: { int32_t i; std::memcpy(&i, p, 4); return i; }
    case kInt64: { int64_t i; std::memcpy(&i, p, 8); return static_cast<double>(i); }
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}
}  // namespace

std::vector<double> TensorProto::to_double() const {
  const size_t es = element_size(data_type);
  std::vector<double> v;
  if (es == 0) return v;
  v.reserve(bytes.size() / es);
  for (size_t i = 0; i + es <= bytes.size(); i += es) v.push_back(element_as_double(&bytes[i], data_type));
  return v;
}

int64_t Node::int_attr(const std::string& attr, int64_t fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.i;
}
float Node::float_attr(const std::string& attr, float fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.f;
}
std::string Node::string_attr(const std::string& attr, const std::string& fallback) const {
  auto it = attributes.find(attr);
  return it == attributes.end() ? fallback : it->second.s;
}

bool parse_tensor(const unsigned char* data, size_t size, TensorProto* out, std::string* error) {
  *out = TensorProto{};
  Reader r(data, size);
  // Values found in the typed fields, kept apart until data_type is known.
  std::vector<uint64_t> varints, fixed64s;
  std::vector<uint32_t> fixed32s;
  const unsigned char* raw = nullptr;
  size_t raw_size = 0;
  bool has_raw = false;
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return fail(error, "malformed TensorProto (bad tag)");
    bool ok = true;
    switch (field) {
      case 1:
        ok = repeated(r, wire, kVarint,
                      [&](uint64_t v) { out->dims.push_back(static_cast<int64_t>(v)); });
        break;
      case 2: {
        uint64_t v;
        ok = wire == kVarint && r.varint(&v);
        out->data_type = static_cast<int32_t>(v);
        break;
      }
      case 4:
        ok = repeated(r, wire, kFixed32,
                      [&](uint64_t v) { fixed32s.push_back(static_cast<uint32_t>(v)); });
        break;
      case 5: case 7:
        ok = repeated(r, wire, kVarint, [&](uint64_t v) { varints.push_back(v); });
        break;
      case 8:
        ok = string_field(r, wire, &out->name);
        break;
      case 9:
        ok = wire == kLengthDelimited && r.bytes(&raw, &raw_size);
        has_raw = ok;
        break;
      case 10:
        ok = repeated(r, wire, kFixed64, [&](uint64_t v) { fixed64s.push_back(v); });
        break;
      case 14: {  // data_location: 1 = EXTERNAL
        uint64_t v;
        ok = wire == kVarint && r.varint(&v);
        if (ok && v == 1) return fail(error, "TensorProto with external data is not supported");
        break;
      }
      default:
        ok = r.skip(wire);
    }
    if (!ok) return fail(error, "malformed TensorProto (field " + std::to_string(field) + ")");
  }
  for (int64_t d : out->dims)
    if (d < 0 || d > (int64_t{1} << 40)) return fail(error, "TensorProto has a bad dimension");
  const size_t es = element_size(out->data_type);
  if (es == 0)
    return fail(error, "unsupported TensorProto data_type " + std::to_string(out->data_type));
  if (has_raw) {
    out->bytes.assign(raw, raw + raw_size);
  } else if (out->data_type == kFloat) {
    for (uint32_t v : fixed32s) append(&out->bytes, v);
  } else if (out->data_type == kDouble) {
    for (uint64_t v : fixed64s) append(&out->bytes, v);
  } else if (out->data_type == kFloat16 || out->data_type == kBFloat16) {
    // int32_data holds the 16-bit patterns, one per entry.
    for (uint64_t v : varints) append(&out->bytes, static_cast<uint16_t>(v));
  } else if (out->data_type == kInt32) {
    for (uint64_t v : varints) append(&out->bytes, static_cast<int32_t>(v));
  } else {
    for (uint64_t v : varints) append(&out->bytes, static_cast<int64_t>(v));
  }
  const uint64_t want = static_cast<uint64_t>(out->numel()) * es;
  if (out->bytes.size() != want)
    return fail(error, "TensorProto '" + out->name + "' holds " +
                           std::to_string(out->bytes.size()) + " bytes, its dims need " +
                           std::to_string(want));
  return true;
}

bool read_tensor(const std::string& path, TensorProto* out, std::string* error) {
  std::vector<unsigned char> bytes;
  if (!read_file(path, &bytes, error)) return false;
  if (!parse_tensor(bytes.data(), bytes.size(), out, error)) {
    if (error) *error = path + ": " + *error;
    return false;
  }
  return true;
}

bool parse_model_nodes(const unsigned char* data, size_t size, std::vector<Node>* out,
                       std::string* error) {
  out->clear();
  const unsigned char* graph;
  size_t graph_size;
  if (!find_message(data, size, 7, &graph, &graph_size))
    return fail(error, "not an ONNX model (no graph)");
  Reader r(graph, graph_size);
  while (!r.done()) {
    uint32_t field, wire;
    if (!r.tag(&field, &wire)) return fail(error, "malformed GraphProto");
    if (field == 1 && wire == kLengthDelimited) {
      const unsigned char* d;
      size_t n;
      Node node;
      if (!r.bytes(&d, &n) || !parse_node(d, n, &node)) return fail(error, "malformed NodeProto");
      out->push_back(std::move(node));
    } else if (!r.skip(wire)) {
      return fail(error, "malformed GraphProto");
    }
  }
  return true;
}

bool read_model_nodes(const std::string& path, std::vector<Node>* out, std::string* error) {
  std::vector<unsigned char> bytes;
  if (!read_file(path, &bytes, error)) return false;
  if (!parse_model_nodes(bytes.data(), bytes.size(), out, error)) {
    if (error) *error = path + ": " + *error;
    return false;
  }
  return true;
}

// ---- Conformance cases -------------------------------------------------------------------

std::vector<std::string> list_conformance_cases(const std::string& root) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return names;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && (n.rfind("test_linear_attention", 0) == 0 ||
                             n.rfind("test_causal_conv_with_state", 0) == 0))
      names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool load_conformance_case(const std::string& dir, ConformanceCase* out, std::string* error) {
  namespace fs = std::filesystem;
  *out = ConformanceCase{};
  out->dir = dir;
  out->name = fs::path(dir).filename().string();
  std::vector<Node> nodes;
  std::string model = dir + "/model.onnx";
  const std::string suffix = "_expanded";
  const std::string& n = out->name;
  if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0)
    model = (fs::path(dir).parent_path() / n.substr(0, n.size() - suffix.size())).string() +
            "/model.onnx";
  if (!read_model_nodes(model, &nodes, error)) return false;
  const Node* op = nullptr;
  for (const Node& node : nodes)
    if (node.op_type == "LinearAttention" || node.op_type == "CausalConvWithState") op = &node;
  if (!op) return fail(error, model + ": no LinearAttention or CausalConvWithState node");
  out->node = *op;
  const std::string data = dir + "/test_data_set_0";
  int next = 0;
  for (const std::string& in : out->node.inputs) {
    out->present.push_back(!in.empty());
    out->inputs.emplace_back();
    if (in.empty()) continue;
    if (!read_tensor(data + "/input_" + std::to_string(next++) + ".pb", &out->inputs.back(),
                     error))
      return false;
  }
  for (int j = 0; j < 2; ++j) {
    out->outputs.emplace_back();
    if (!read_tensor(data + "/output_" + std::to_string(j) + ".pb", &out->outputs.back(), error))
      return false;
  }
  return true;
}

namespace {

// One tensor of a case as the call sees it: host bytes and, for device runs, a device copy.
class CallTensor {
 public:
  CallTensor() = default;
  CallTensor(const CallTensor&) = delete;
  CallTensor& operator=(const CallTensor&) = delete;
  ~CallTensor() {
#if defined(LINATTN_WITH_CUDA)
    if (device_) cudaFree(device_);
#endif
  }

  // Copies the data; a zero-size tensor still gets a valid pointer.
  bool init(linattn_dtype dtype, const std::vector<int64_t>& dims,
            const std::vector<unsigned char>& bytes, linattn_memory memory, std::string* err) {
    dtype_ = dtype;
    dims_ = dims;
    memory_ = memory;
    bytes_ = bytes;
    size_ = bytes.size();
    if (bytes_.empty()) bytes_.resize(8);
    if (memory == LINATTN_MEMORY_CUDA) {
#if defined(LINATTN_WITH_CUDA)
      if (cudaMalloc(&device_, bytes_.size()) != cudaSuccess ||
          cudaMemcpy(device_, bytes_.data(), bytes_.size(), cudaMemcpyHostToDevice) !=
              cudaSuccess)
        return fail(err, "device allocation or copy failed");
#else
      return fail(err, "this build has no CUDA backend");
#endif
    }
    return true;
  }
  linattn_tensor view() {
    int64_t shape[LINATTN_MAX_RANK] = {0, 0, 0, 0};
    for (size_t i = 0; i < dims_.size() && i < LINATTN_MAX_RANK; ++i) shape[i] = dims_[i];
    void* data = memory_ == LINATTN_MEMORY_CUDA ? device_ : bytes_.data();
    return linattn_tensor_contiguous(data, dtype_, memory_, static_cast<int32_t>(dims_.size()),
                                     shape);
  }
  bool fetch(std::string* err) {
#if defined(LINATTN_WITH_CUDA)
    if (memory_ == LINATTN_MEMORY_CUDA &&
        cudaMemcpy(bytes_.data(), device_, bytes_.size(), cudaMemcpyDeviceToHost) != cudaSuccess)
      return fail(err, "device copy back failed");
#else
    (void)err;
#endif
    return true;
  }
  std::vector<unsigned char> bytes() const {
    return std::vector<unsigned char>(bytes_.begin(), bytes_.begin() + size_);
  }

 private:
  linattn_dtype dtype_ = LINATTN_FLOAT32;
  std::vector<int64_t> dims_;
  linattn_memory memory_ = LINATTN_MEMORY_HOST;
  std::vector<unsigned char> bytes_;
  size_t size_ = 0;
  void* device_ = nullptr;
};

std::vector<unsigned char> nan_bytes(linattn_dtype dtype, int64_t n) {
  std::vector<unsigned char> b;
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == LINATTN_FLOAT32) append(&b, std::numeric_limits<float>::quiet_NaN());
    else if (dtype == LINATTN_FLOAT64) append(&b, std::numeric_limits<double>::quiet_NaN());
    else if (dtype == LINATTN_FLOAT16) append(&b, uint16_t{0x7e00});
    else append(&b, uint16_t{0x7fc0});
  }
  return b;
}

// Elementwise |got - want| <= atol + rtol |want|, scaled so that <= 1 passes; infinity when a
// value is not finite or the sizes differ.
double scaled_error(const std::vector<double>& got, const std::vector<double>& want,
                    linattn_dtype dtype) {
  double atol = 1e-5, rtol = 1e-4;
  if (dtype == LINATTN_FLOAT16) atol = 2e-3, rtol = 4e-3;      // a few float16 ulps
  if (dtype == LINATTN_BFLOAT16) atol = 1.6e-2, rtol = 1.6e-2;  // a few bfloat16 ulps
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::fabs(got[i] - want[i]) / (atol + rtol * std::fabs(want[i])));
  }
  return worst;
}

}  // namespace

ConformanceResult run_conformance_case(const ConformanceCase& c, linattn_backend backend,
                                       linattn_memory memory) {
  ConformanceResult res;
  std::string err;
  const size_t n_in = c.node.inputs.size();
  std::vector<CallTensor> in(n_in);
  auto input_view = [&](size_t j) { return j < n_in && c.present[j] ? in[j].view() : absent(); };
  for (size_t j = 0; j < n_in; ++j) {
    if (!c.present[j]) continue;
    linattn_dtype dt;
    if (!c.inputs[j].dtype(&dt)) return {false, "input " + c.node.inputs[j] + ": bad dtype"};
    if (!in[j].init(dt, c.inputs[j].dims, c.inputs[j].bytes, memory, &err))
      return {false, err};
  }
  CallTensor out[2];
  linattn_dtype out_dt[2];
  for (int j = 0; j < 2; ++j) {
    if (!c.outputs[j].dtype(&out_dt[j])) return {false, "output: bad dtype"};
    if (!out[j].init(out_dt[j], c.outputs[j].dims, nan_bytes(out_dt[j], c.outputs[j].numel()),
                     memory, &err))
      return {false, err};
  }
  linattn::Context ctx;
  linattn::Status s = linattn::Context::create(backend, &ctx, 2);
  if (!s.ok()) return {false, "context: " + s.to_string()};

  if (c.node.op_type == "LinearAttention") {
    LinearAttentionArgs a = default_linear_attention_args();
    a.q_num_heads = static_cast<int32_t>(c.node.int_attr("q_num_heads", 0));
    a.kv_num_heads = static_cast<int32_t>(c.node.int_attr("kv_num_heads", 0));
    const std::string rule = c.node.string_attr("update_rule", "gated_delta");
    if (linattn_update_rule_from_string(rule.c_str(), &a.update_rule) != LINATTN_OK)
      return {false, "update_rule: " + std::string(linattn_last_error())};
    a.scale = c.node.float_attr("scale", 0.0f);
    a.chunk_size = static_cast<int32_t>(c.node.int_attr("chunk_size", 64));
    a.query = input_view(0);
    a.key = input_view(1);
    a.value = input_view(2);
    a.past_state = input_view(3);
    a.decay = input_view(4);
    a.beta = input_view(5);
    a.output = out[0].view();
    a.present_state = out[1].view();
    s = linattn::linear_attention(ctx, a);
  } else {
    CausalConvArgs a = default_causal_conv_args();
    const std::string act = c.node.string_attr("activation", "none");
    if (linattn_activation_from_string(act.c_str(), &a.activation) != LINATTN_OK)
      return {false, "activation: " + std::string(linattn_last_error())};
    if (c.node.int_attr("ndim", 1) != 1) return {false, "ndim other than 1 is not supported"};
    a.channels_last = static_cast<int32_t>(c.node.int_attr("channels_last", 0));
    a.input = input_view(0);
    a.weight = input_view(1);
    a.bias = input_view(2);
    a.past_state = input_view(3);
    a.output = out[0].view();
    a.present_state = out[1].view();
    s = linattn::causal_conv(ctx, a);
  }
  if (!s.ok()) return {false, c.node.op_type + " failed: " + s.to_string()};
#if defined(LINATTN_WITH_CUDA)
  if (memory == LINATTN_MEMORY_CUDA && cudaDeviceSynchronize() != cudaSuccess)
    return {false, "cudaDeviceSynchronize failed"};
#endif
  for (CallTensor& t : out)
    if (!t.fetch(&err)) return {false, err};

  double e[2];
  for (int j = 0; j < 2; ++j) {
    TensorProto got = c.outputs[j];
    got.bytes = out[j].bytes();
    e[j] = scaled_error(got.to_double(), c.outputs[j].to_double(), out_dt[j]);
  }
  res.output_error = e[0];
  res.state_error = e[1];
  res.ok = e[0] <= 1.0 && e[1] <= 1.0;
  char buf[160];
  std::snprintf(buf, sizeof(buf), "output error %.3g, present_state error %.3g (in units of the "
                "tolerance; <= 1 passes)", e[0], e[1]);
  res.message = buf;
  return res;
}

}  // namespace linattn::test::onnx
