// Rules every tensor view obeys whatever the operator (rank, sizes, dtype, memory space,
// strides, overflow, aliasing), and the formatting that error messages share. Used by
// check.cpp; operator-specific shape rules live there.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/status.hpp"
#include "linattn/linattn.h"

namespace linattn::detail {

// The C ABI lets a caller store any integer in an enum field, and reading a value outside the
// enumerators as the C++ enum type is undefined behaviour; every enum coming from the caller is
// therefore read through its bits until it has been checked.
template <class E>
int enum_value(const E& e) {
  static_assert(std::is_enum_v<E>);
  std::underlying_type_t<E> v;
  std::memcpy(&v, &e, sizeof v);
  return static_cast<int>(v);
}

// "float32", "float16", ...; "dtype(17)" for a value outside the enum.
std::string dtype_string(int dtype);
// Element size in bytes; 0 for a value outside the enum.
size_t dtype_bytes(int dtype);

// "(2, 5, 30)" for a view of rank 1..4; "()" when absent; the rank alone when malformed.
std::string shape_string(const linattn_tensor& t);
std::string strides_string(const linattn_tensor& t);

// The bytes a non-empty view can touch: [begin, end). begin == end for an empty view.
struct ByteSpan {
  uintptr_t begin = 0, end = 0;
  bool empty() const { return begin == end; }
};

// Checks a present view (rank != 0) against the generic rules, for an operator `op` (message
// prefix) and the input called `name`, expected to have `rank` dims laid out as `layout`
// (e.g. "(B, T, H_q*d_k)"), on `backend`:
//   rank as expected; every dim >= 0; dtype and memory space known; memory space readable by
//   the backend (host for cpu/reference, device for cuda); innermost stride 1, other strides
//   >= 0; element count, largest element offset and byte size fit int64; a non-null data
//   pointer unless the view is empty.
// Does not check the dtype class (see check_float_dtype) nor the shape against other inputs.
Status check_view(const char* op, const char* name, const linattn_tensor& t, int rank,
                  const char* layout, linattn_backend backend, ByteSpan* span);

// The dtype of a floating-point operand: float32, float16 or bfloat16 on every backend, plus
// float64 on the reference backend (UNSUPPORTED elsewhere: valid, but not implemented there).
Status check_float_dtype(const char* op, const char* name, linattn_dtype t,
                         linattn_backend backend);

// An output must not write one element twice: sorted by stride, each dim's stride must be at
// least the extent of the block formed by the dims inside it. Empty views never overlap.
Status check_no_self_overlap(const char* op, const char* name, const linattn_tensor& t);

// Conservative aliasing test between two views: do the byte ranges they span intersect?
inline bool spans_overlap(const ByteSpan& a, const ByteSpan& b) {
  return !a.empty() && !b.empty() && a.begin < b.end && b.begin < a.end;
}

// True when two views are the same memory read the same way (same pointer, dtype, shape and
// strides): the one form of aliasing an output may have with an input (in-place state update).
bool same_view(const linattn_tensor& a, const linattn_tensor& b);

}  // namespace linattn::detail
