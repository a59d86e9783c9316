// The ONNX standard's node test cases for LinearAttention-27 and CausalConvWithState-27 (and
// the _expanded twins, same data), run through the public API on the CPU and reference
// backends and compared with the expected outputs. Skips when the case directory is absent.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "common/onnx_pb.hpp"

namespace linattn::test::onnx {
namespace {

const char* kRoot = LINATTN_CONFORMANCE_DIR;

std::vector<std::string> case_names() {
  std::vector<std::string> names = list_conformance_cases(kRoot);
  if (names.empty()) names.push_back("");  // one test that reports the skip
  return names;
}

using Param = std::tuple<std::string, linattn_backend>;

class Conformance : public ::testing::TestWithParam<Param> {};

TEST_P(Conformance, MatchesExpectedOutputs) {
  const auto& [name, backend] = GetParam();
  if (name.empty())
    GTEST_SKIP() << "no ONNX conformance cases in " << kRoot
                 << " (configure with -DLINATTN_CONFORMANCE_DIR=<dir of test_linear_attention_*>)";
  ConformanceCase c;
  std::string err;
  ASSERT_TRUE(load_conformance_case(std::string(kRoot) + "/" + name, &c, &err)) << err;
  const ConformanceResult r = run_conformance_case(c, backend, LINATTN_MEMORY_HOST);
  EXPECT_TRUE(r.ok) << name << ": " << r.message;
}

std::string param_name(const ::testing::TestParamInfo<Param>& info) {
  const std::string& n = std::get<0>(info.param);
  std::string s = std::get<1>(info.param) == LINATTN_BACKEND_CPU ? "cpu_" : "reference_";
  s += n.empty() ? "no_cases" : n.substr(5);  // drop "test_"
  return s;
}

INSTANTIATE_TEST_SUITE_P(Onnx, Conformance,
                         ::testing::Combine(::testing::ValuesIn(case_names()),
                                            ::testing::Values(LINATTN_BACKEND_CPU,
                                                              LINATTN_BACKEND_REFERENCE)),
                         param_name);

// The reader itself: the cases must cover both operators and their attributes, so that a
// reader that silently drops fields cannot pass the suite above by running nothing.
TEST(OnnxReader, ReadsNodesAttributesAndTensors) {
  const std::vector<std::string> names = list_conformance_cases(kRoot);
  if (names.empty()) GTEST_SKIP() << "no ONNX conformance cases in " << kRoot;
  int la = 0, conv = 0;
  for (const std::string& n : names) {
    ConformanceCase c;
    std::string err;
    ASSERT_TRUE(load_conformance_case(std::string(kRoot) + "/" + n, &c, &err)) << err;
    ASSERT_EQ(c.outputs.size(), 2u);
    if (c.node.op_type == "LinearAttention") {
      ++la;
      EXPECT_GT(c.node.int_attr("q_num_heads", 0), 0) << n;
      EXPECT_GT(c.node.int_attr("kv_num_heads", 0), 0) << n;
      EXPECT_EQ(c.outputs[1].dims.size(), 4u) << n;
    } else {
      ++conv;
      EXPECT_EQ(c.node.op_type, "CausalConvWithState") << n;
      EXPECT_EQ(c.outputs[1].dims.size(), 3u) << n;
    }
  }
  EXPECT_GT(la, 0);
  EXPECT_GT(conv, 0);
  // Attributes of a known case.
  ConformanceCase c;
  std::string err;
  if (load_conformance_case(std::string(kRoot) + "/test_linear_attention_explicit_scale", &c,
                            &err)) {
    EXPECT_FLOAT_EQ(c.node.float_attr("scale", 0), 0.25f);
    ASSERT_EQ(c.node.inputs.size(), 6u);
    EXPECT_EQ(c.node.inputs[3], "");  // absent past_state
    EXPECT_FALSE(c.present[3]);
  }
}

// Hand-made wire bytes: packed and unpacked dims, float_data, int32_data for float16.
TEST(OnnxReader, DecodesFieldEncodings) {
  // dims: 2 (unpacked, field 1 varint) and 3 (unpacked); data_type 1; float_data packed.
  std::vector<unsigned char> b = {0x08, 0x02, 0x08, 0x03, 0x10, 0x01};
  b.push_back(0x22);  // field 4, length-delimited
  b.push_back(24);
  for (int i = 0; i < 6; ++i) {
    float f = static_cast<float>(i) * 0.5f;
    unsigned char x[4];
    std::memcpy(x, &f, 4);
    b.insert(b.end(), x, x + 4);
  }
  b.insert(b.end(), {0x42, 0x01, 'x'});  // name "x"
  TensorProto t;
  std::string err;
  ASSERT_TRUE(parse_tensor(b.data(), b.size(), &t, &err)) << err;
  EXPECT_EQ(t.name, "x");
  ASSERT_EQ(t.dims, (std::vector<int64_t>{2, 3}));
  std::vector<double> v = t.to_double();
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[5], 2.5);

  // float16 through int32_data (packed varints): 1.0 = 0x3c00, -2.0 = 0xc000.
  std::vector<unsigned char> h = {0x0a, 0x01, 0x02, 0x10, 0x0a, 0x2a, 0x05,
                                  0x80, 0x78, 0x80, 0x80, 0x03};
  ASSERT_TRUE(parse_tensor(h.data(), h.size(), &t, &err)) << err;
  v = t.to_double();
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0], 1.0);
  EXPECT_EQ(v[1], -2.0);

  // Truncated and inconsistent inputs are errors, not crashes.
  std::vector<unsigned char> bad(b.begin(), b.begin() + 10);
  EXPECT_FALSE(parse_tensor(bad.data(), bad.size(), &t, &err));
  std::vector<unsigned char> short_data = {0x08, 0x04, 0x10, 0x01, 0x22, 0x04, 0, 0, 0, 0};
  EXPECT_FALSE(parse_tensor(short_data.data(), short_data.size(), &t, &err));
  EXPECT_NE(err.find("bytes"), std::string::npos) << err;
}

}  // namespace
}  // namespace linattn::test::onnx
