// A minimal reader of ONNX protobuf files, enough for the conformance cases: TensorProto
// (.pb files: name, dims, data_type and the data) and the nodes of a model.onnx (op type,
// domain, inputs with "" for an absent optional, outputs, scalar attributes). The wire format
// is decoded by hand; malformed input is an error message, never a crash.
//
// And the conformance runner: one case directory (model.onnx + test_data_set_0) run through the
// public API on a chosen backend and memory kind, compared with output_0.pb / output_1.pb.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "linattn/linattn.h"

namespace linattn::test::onnx {

// TensorProto.DataType values used here.
enum : int32_t {
  kFloat = 1,
  kInt32 = 6,
  kInt64 = 7,
  kFloat16 = 10,
  kDouble = 11,
  kBFloat16 = 16,
};

struct TensorProto {
  std::string name;
  std::vector<int64_t> dims;
  int32_t data_type = 0;
  // Little-endian element bytes in the element type's size, whichever field held them.
  std::vector<unsigned char> bytes;

  int64_t numel() const;
  // The linattn dtype of data_type; false for a type linattn has no name for.
  bool dtype(linattn_dtype* out) const;
  // Every element as a double (float16 and bfloat16 decoded).
  std::vector<double> to_double() const;
};

struct Attribute {
  std::string name;
  int32_t type = 0;  // AttributeProto.AttributeType: 1 FLOAT, 2 INT, 3 STRING
  float f = 0;
  int64_t i = 0;
  std::string s;
};

struct Node {
  std::string op_type, domain, name;
  std::vector<std::string> inputs;  // "" for an absent optional input
  std::vector<std::string> outputs;
  std::map<std::string, Attribute> attributes;

  bool has(const std::string& attr) const { return attributes.count(attr) != 0; }
  int64_t int_attr(const std::string& attr, int64_t fallback) const;
  float float_attr(const std::string& attr, float fallback) const;
  std::string string_attr(const std::string& attr, const std::string& fallback) const;
};

bool parse_tensor(const unsigned char* data, size_t size, TensorProto* out, std::string* error);
bool read_tensor(const std::string& path, TensorProto* out, std::string* error);
// The nodes of ModelProto.graph, in graph order.
bool parse_model_nodes(const unsigned char* data, size_t size, std::vector<Node>* out,
                       std::string* error);
bool read_model_nodes(const std::string& path, std::vector<Node>* out, std::string* error);

// ---- Conformance cases -------------------------------------------------------------------

// One case directory: the operator node and the tensors of test_data_set_0. Inputs are indexed
// in operator order (absent optional inputs have name "" and no data).
struct ConformanceCase {
  std::string dir, name;
  Node node;
  std::vector<TensorProto> inputs;   // operator order; size = node.inputs.size()
  std::vector<bool> present;         // whether inputs[j] was given
  std::vector<TensorProto> outputs;  // output_0 (output), output_1 (present_state)
};

// The case directories under `root` whose names start with "test_linear_attention" or
// "test_causal_conv_with_state", sorted. Empty when root does not exist.
std::vector<std::string> list_conformance_cases(const std::string& root);

// Loads a case. An `_expanded` directory holds the standard's function body instead of the
// node; its attributes are taken from the twin directory without the suffix (same data).
bool load_conformance_case(const std::string& dir, ConformanceCase* out, std::string* error);

struct ConformanceResult {
  bool ok = false;
  std::string message;       // the failure, or a summary of the errors on success
  double output_error = 0;   // max |got - want| / (atol + rtol |want|) (<= 1 passes)
  double state_error = 0;
};

// Runs the case on `backend` with tensors in `memory` (LINATTN_MEMORY_CUDA copies inputs to the
// device and results back; needs a build with the CUDA backend). Outputs are poisoned with NaN
// before the call. Tolerance follows the dtype: float16 / bfloat16 outputs are compared at
// their own precision.
ConformanceResult run_conformance_case(const ConformanceCase& c, linattn_backend backend,
                                       linattn_memory memory);

}  // namespace linattn::test::onnx
