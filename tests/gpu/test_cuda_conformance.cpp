// The ONNX standard's node test cases run on the CUDA backend with device tensors. Skips when
// no device is visible or the case directory is absent.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/onnx_pb.hpp"
#include "gpu/cuda_support.hpp"

namespace linattn::test::onnx {
namespace {

const char* kRoot = LINATTN_CONFORMANCE_DIR;

std::vector<std::string> case_names() {
  std::vector<std::string> names = list_conformance_cases(kRoot);
  if (names.empty()) names.push_back("");
  return names;
}

class CudaConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaConformance, MatchesExpectedOutputs) {
  LINATTN_SKIP_WITHOUT_GPU();
  const std::string& name = GetParam();
  if (name.empty()) GTEST_SKIP() << "no ONNX conformance cases in " << kRoot;
  ConformanceCase c;
  std::string err;
  ASSERT_TRUE(load_conformance_case(std::string(kRoot) + "/" + name, &c, &err)) << err;
  const ConformanceResult r = run_conformance_case(c, LINATTN_BACKEND_CUDA, LINATTN_MEMORY_CUDA);
  EXPECT_TRUE(r.ok) << name << ": " << r.message;
}

INSTANTIATE_TEST_SUITE_P(Onnx, CudaConformance, ::testing::ValuesIn(case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param.empty() ? std::string("no_cases")
                                                     : info.param.substr(5);
                         });

}  // namespace
}  // namespace linattn::test::onnx
