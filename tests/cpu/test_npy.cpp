// The .npy reader/writer of the linattn command (tools/npy.hpp): round trips for every dtype
// and header version, and crafted bad files, each a clear error naming the file.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "npy.hpp"

namespace linattn::npy {
namespace {

namespace fs = std::filesystem;

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("linattn_npy_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_bytes(const std::string& name, const std::string& bytes) const {
    std::ofstream f(path(name), std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path(name);
  }
  // A file with the given version, header dict and payload (header padded like NumPy does).
  std::string craft(const std::string& name, int major, std::string dict,
                    const std::string& payload) const {
    const size_t prefix = major == 1 ? 10 : 12;
    size_t total = prefix + dict.size() + 1;
    dict.append((64 - total % 64) % 64, ' ');
    dict += '\n';
    std::string b = "\x93NUMPY";
    b += static_cast<char>(major);
    b += '\0';
    const size_t len = dict.size();
    b += static_cast<char>(len & 0xff);
    b += static_cast<char>((len >> 8) & 0xff);
    if (major != 1) {
      b += static_cast<char>((len >> 16) & 0xff);
      b += static_cast<char>((len >> 24) & 0xff);
    }
    return write_bytes(name, b + dict + payload);
  }
  // Reading must fail, with a message naming the file and containing `needle`.
  void expect_error(const std::string& file, const std::string& needle) {
    Array a;
    std::string err;
    EXPECT_FALSE(read(file, &a, &err)) << file;
    EXPECT_NE(err.find(file), std::string::npos) << err;
    EXPECT_NE(err.find(needle), std::string::npos) << "message: " << err;
  }
  fs::path dir_;
};

TEST_F(NpyTest, RoundTripsEveryDtype) {
  for (linattn_dtype dt : {LINATTN_FLOAT32, LINATTN_FLOAT16, LINATTN_BFLOAT16, LINATTN_FLOAT64}) {
    Array a;
    std::string err;
    ASSERT_TRUE(make_array(dt, {2, 3, 5}, &a, &err)) << err;
    for (size_t i = 0; i < a.bytes.size(); ++i) a.bytes[i] = static_cast<unsigned char>(i * 7 + 1);
    const std::string p = path("a.npy");
    ASSERT_TRUE(write(p, a, &err)) << err;
    Array b;
    ASSERT_TRUE(read(p, &b, &err)) << err;
    EXPECT_EQ(b.dtype, dt);
    EXPECT_EQ(b.shape, a.shape);
    EXPECT_EQ(b.bytes, a.bytes);
  }
}

TEST_F(NpyTest, WritesNumpyCompatibleHeaders) {
  Array a;
  std::string err;
  ASSERT_TRUE(make_array(LINATTN_BFLOAT16, {4}, &a, &err));
  std::vector<unsigned char> image;
  ASSERT_TRUE(serialize(a, &image, &err)) << err;
  const std::string s(image.begin(), image.end());
  EXPECT_EQ(s.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_NE(s.find("'descr': '<V2'"), std::string::npos);
  EXPECT_NE(s.find("'shape': (4,)"), std::string::npos);  // a 1-tuple keeps its comma
  EXPECT_EQ((image.size() - a.bytes.size()) % 64, 0u);   // data aligned like NumPy's
  EXPECT_EQ(image[image.size() - a.bytes.size() - 1], '\n');
  ASSERT_TRUE(make_array(LINATTN_FLOAT32, {}, &a, &err));  // a 0-d array: shape ()
  ASSERT_TRUE(serialize(a, &image, &err)) << err;
  EXPECT_NE(std::string(image.begin(), image.end()).find("'shape': ()"), std::string::npos);
}

TEST_F(NpyTest, ReadsVersions2And3AndDescrSpellings) {
  const std::string four_floats(16, '\0');
  Array a;
  std::string err;
  for (int v : {2, 3}) {
    ASSERT_TRUE(read(craft("v.npy", v, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
                           four_floats),
                     &a, &err))
        << err;
    EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  }
  ASSERT_TRUE(read(craft("bf.npy", 1, "{'descr': 'bfloat16', 'fortran_order': False, 'shape': (3,)}",
                         std::string(6, '\0')),
                   &a, &err))
      << err;
  EXPECT_EQ(a.dtype, LINATTN_BFLOAT16);
  ASSERT_TRUE(read(craft("v2.npy", 1, "{'descr': '|V2', 'shape': (0, 5), 'fortran_order': False}",
                         ""),
                   &a, &err))
      << err;
  EXPECT_EQ(a.dtype, LINATTN_BFLOAT16);
  EXPECT_EQ(a.numel(), 0);
}

TEST_F(NpyTest, RejectsMalformedFiles) {
  const std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  expect_error(path("missing.npy"), "cannot open");
  expect_error(write_bytes("empty.npy", ""), "bad magic");
  expect_error(write_bytes("magic.npy", "\x93NUMPX\x01\x00\x10\x00{}"), "bad magic");
  expect_error(write_bytes("version.npy", std::string("\x93NUMPY\x04\x00\x10\x00", 10)),
               "version 4.0");
  // The header length runs past the end of the file.
  expect_error(write_bytes("hdrlen.npy", std::string("\x93NUMPY\x01\x00\xff\x7f{'descr'", 17)),
               "truncated .npy header");
  expect_error(craft("fortran.npy", 1,
                     "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                     std::string(24, '\0')),
               "fortran_order True");
  expect_error(craft("bigendian.npy", 1,
                     "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }",
                     std::string(24, '\0')),
               "unsupported dtype '>f4'");
  expect_error(craft("int8.npy", 1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }",
                     std::string(2, '\0')),
               "unsupported dtype");
  expect_error(craft("truncated.npy", 1, ok_dict, std::string(23, '\0')), "truncated data");
  expect_error(craft("extra.npy", 1, ok_dict, std::string(25, '\0')), "data size mismatch");
  expect_error(craft("nodict.npy", 1, "descr: '<f4'", ""), "malformed .npy header");
  expect_error(craft("nokey.npy", 1, "{'descr': '<f4', 'shape': (2, 3), }", ""),
               "malformed .npy header");
  expect_error(craft("badshape.npy", 1,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", ""),
               "malformed .npy header");
  expect_error(craft("unterminated.npy", 1,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", ""),
               "malformed .npy header");
  // Huge shapes: the element count overflows 64 bits, or merely exceeds any real file.
  expect_error(craft("overflow.npy", 1,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, "
                     "4294967296, 16), }",
                     ""),
               "overflows");
  expect_error(craft("dimoverflow.npy", 1,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': "
                     "(99999999999999999999999,), }",
                     ""),
               "overflows int64");
  expect_error(craft("huge.npy", 1,
                     "{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }",
                     std::string(8, '\0')),
               "truncated data");
}

TEST_F(NpyTest, EveryTruncationOfAValidFileIsAnError) {
  Array a;
  std::string err;
  ASSERT_TRUE(make_array(LINATTN_FLOAT32, {3, 4}, &a, &err));
  std::vector<unsigned char> image;
  ASSERT_TRUE(serialize(a, &image, &err));
  for (size_t n = 0; n < image.size(); ++n) {
    Array b;
    EXPECT_FALSE(parse(image.data(), n, "cut.npy", &b, &err)) << n;
    EXPECT_NE(err.find("cut.npy"), std::string::npos);
  }
  Array b;
  EXPECT_TRUE(parse(image.data(), image.size(), "whole.npy", &b, &err)) << err;
}

TEST_F(NpyTest, WriteErrorsNameTheFile) {
  Array a;
  std::string err;
  ASSERT_TRUE(make_array(LINATTN_FLOAT32, {2}, &a, &err));
  const std::string p = path("no_such_dir/out.npy");
  EXPECT_FALSE(write(p, a, &err));
  EXPECT_NE(err.find(p), std::string::npos) << err;
  a.bytes.pop_back();  // inconsistent with the shape
  EXPECT_FALSE(write(path("x.npy"), a, &err));
  EXPECT_NE(err.find("x.npy"), std::string::npos) << err;
}

}  // namespace
}  // namespace linattn::npy
