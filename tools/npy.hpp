// Reading and writing NumPy .npy files: the tensor format of `linattn op` and of the peer tests.
//
// Supported: format versions 1.0, 2.0 and 3.0; C order only (fortran_order True is an error);
// little-endian float32 ('<f4'), float16 ('<f2'), float64 ('<f8') and bfloat16.
// NumPy has no bfloat16 type. The ml_dtypes package (the bfloat16 of JAX and of onnx) saves its
// bfloat16 arrays with descr '<V2' (a raw 2-byte void), so that is what we write, and what we
// read as bfloat16; the descr 'bfloat16' is read as well. In NumPy, load such a file with
// np.load(path).view(ml_dtypes.bfloat16).
//
// Every failure (missing file, bad magic, bad header, unsupported dtype, a shape whose size
// overflows, a data size that does not match the shape) is returned as a message that names
// the file; nothing is thrown and nothing aborts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "linattn/linattn.h"

namespace linattn::npy {

// A host array: dtype, shape (row-major, C order) and the raw little-endian element bytes.
struct Array {
  linattn_dtype dtype = LINATTN_FLOAT32;
  std::vector<int64_t> shape;
  std::vector<unsigned char> bytes;

  int64_t numel() const;
  size_t element_size() const;
  void* data() { return bytes.data(); }
  const void* data() const { return bytes.data(); }
};

// An array of the given dtype and shape with zeroed storage, or an error when the size
// overflows or is negative.
bool make_array(linattn_dtype dtype, const std::vector<int64_t>& shape, Array* out,
                std::string* error);

// Parses the bytes of a .npy file. `name` is used in error messages.
bool parse(const unsigned char* bytes, size_t size, const std::string& name, Array* out,
           std::string* error);
bool read(const std::string& path, Array* out, std::string* error);

// The complete file image (version 1.0 header, or 2.0 when the header needs it).
bool serialize(const Array& array, std::vector<unsigned char>* out, std::string* error);
bool write(const std::string& path, const Array& array, std::string* error);

// The descr string written for a dtype ('<f4', '<f2', '<V2' for bfloat16, '<f8'); empty for
// dtypes .npy files do not carry here.
std::string descr_for(linattn_dtype dtype);

}  // namespace linattn::npy
