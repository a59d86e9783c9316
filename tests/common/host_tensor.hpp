// Host tensors for tests: storage of any linattn dtype (float data rounded to float16/bfloat16
// on write, round-to-nearest-even), a row-major shape, and strides that may be padded so the
// view is a slice of a wider buffer. Padding is NaN so a kernel that reads outside its view
// poisons its own output, and outputs are NaN-filled before a run so unwritten elements and
// stray writes into the padding are both detectable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "linattn/linattn.h"

namespace linattn::test {

// Storage starts on a cache line, so packed views whose rows are whole vectors are aligned the
// way large framework tensors are (and the kernels' aligned-only paths, such as streaming
// stores, run); strided views stay unaligned.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  static constexpr std::align_val_t kAlign{64};
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), kAlign)); }
  void deallocate(T* p, size_t) { ::operator delete(p, kAlign); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

class HostTensor {
 public:
  HostTensor() = default;  // rank 0: an absent optional input
  // strided: every outer stride gets extra elements beyond the packed extent (the innermost
  // stride stays 1, as the ABI requires).
  HostTensor(linattn_dtype dtype, std::vector<int64_t> shape, bool strided = false);

  bool present() const { return !shape_.empty(); }
  linattn_dtype dtype() const { return dtype_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int64_t numel() const;                   // logical elements
  int64_t storage_elements() const { return storage_elems_; }
  size_t storage_bytes() const;
  void* data() { return storage_.data(); }
  const void* data() const { return storage_.data(); }

  // The ABI view of this tensor; `data` replaces the host pointer (a device mirror).
  linattn_tensor view(linattn_memory memory = LINATTN_MEMORY_HOST, void* data = nullptr) const;

  // Storage element access (rounded to the dtype on write).
  double get(int64_t storage_index) const;
  void set(int64_t storage_index, double x);

  // Storage offsets of the logical elements, in row-major order.
  std::vector<int64_t> logical_offsets() const;
  std::vector<double> values() const;  // logical elements, row-major
  void set_values(const std::function<double(int64_t)>& f);  // f(logical row-major index)
  void fill_storage(double x);                                // padding included
  void poison() { fill_storage(std::numeric_limits<double>::quiet_NaN()); }

  int64_t count_nan() const;       // among logical elements
  bool padding_is_nan() const;     // every non-logical storage element still NaN

  // Same values in another dtype and layout (e.g. the float64 copy the oracle reads).
  HostTensor converted(linattn_dtype dtype, bool strided = false) const;

 private:
  linattn_dtype dtype_ = LINATTN_FLOAT32;
  std::vector<int64_t> shape_, strides_;
  int64_t storage_elems_ = 0;
  std::vector<uint64_t, CacheLineAllocator<uint64_t>> storage_;  // raw bytes
};

// Element size of a dtype in bytes.
size_t dtype_bytes(linattn_dtype dtype);
const char* dtype_short_name(linattn_dtype dtype);  // f32, f16, bf16, f64

// Rounds x to what `dtype` can hold (float64 unchanged).
double round_to(linattn_dtype dtype, double x);

// A sub-range [begin, end) of dimension `dim` of a view (same strides, shifted data pointer);
// works on device views as well.
linattn_tensor slice_view(const linattn_tensor& view, int dim, int64_t begin, int64_t end);

}  // namespace linattn::test
