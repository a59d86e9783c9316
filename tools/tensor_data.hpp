// Host-side tensor helpers for the tool: element access through linattn views (any dtype,
// strides in elements), random fills, relative error against the oracle, and a tensor that
// lives on the host and, for --device cuda, also on the device.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "device_buffer.hpp"
#include "linattn/linattn.h"
#include "npy.hpp"

namespace linattn::tool {

double load_element(const void* base, linattn_dtype dtype, int64_t offset);
void store_element(void* base, linattn_dtype dtype, int64_t offset, double value);
// Rounds a float32 value through a dtype (what storing and reloading would give).
float round_to(linattn_dtype dtype, float value);

// Calls f(offset) for every element of a view (offsets in elements from view.data).
template <class F>
void for_each_offset(const linattn_tensor& t, F&& f) {
  int64_t shape[LINATTN_MAX_RANK] = {1, 1, 1, 1}, stride[LINATTN_MAX_RANK] = {0, 0, 0, 0};
  const int r = t.rank;
  for (int i = 0; i < r; ++i) {
    shape[LINATTN_MAX_RANK - r + i] = t.shape[i];
    stride[LINATTN_MAX_RANK - r + i] = t.strides[i];
  }
  for (int64_t a = 0; a < shape[0]; ++a)
    for (int64_t b = 0; b < shape[1]; ++b)
      for (int64_t c = 0; c < shape[2]; ++c)
        for (int64_t d = 0; d < shape[3]; ++d)
          f(a * stride[0] + b * stride[1] + c * stride[2] + d * stride[3]);
}

// ||got - want||_F / ||want||_F over two host views of the same shape (the absolute norm of
// the difference when want is all zeros). NaN when any element of got is not finite.
double relative_error(const linattn_tensor& got, const linattn_tensor& want);

// The same error accumulated over several comparisons (e.g. every decode step).
struct ErrorAccumulator {
  double diff2 = 0, ref2 = 0;
  bool nonfinite = false, mismatch = false;
  void add(const linattn_tensor& got, const linattn_tensor& want);
  double relative() const;
};

// Scales each head vector (the last dim split into pieces of head_dim) of a rank-3 host view to
// unit L2 norm, as the models do to q and k before the delta rule (eps 1e-6 as in DESIGN.md).
void l2_normalise_heads(const linattn_tensor& t, int64_t head_dim);

// Stores f() into every element of a host view.
template <class F>
void fill_view(const linattn_tensor& t, F&& f) {
  for_each_offset(t, [&](int64_t o) { store_element(t.data, t.dtype, o, f()); });
}

// A view of part of a tensor: the same base with an element offset, a shape and strides.
linattn_tensor subview(const linattn_tensor& base, int64_t offset, std::vector<int64_t> shape,
                       std::vector<int64_t> strides);

class Random {
 public:
  explicit Random(uint64_t seed) : gen_(seed) {}
  double normal() { return normal_(gen_); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit_(gen_); }

 private:
  std::mt19937_64 gen_;
  std::normal_distribution<double> normal_{0.0, 1.0};
  std::uniform_real_distribution<double> unit_{0.0, 1.0};
};

// A tensor with host storage and, when staged on the device, a device copy. The view points at
// the device copy once staged.
class Tensor {
 public:
  npy::Array host;

  bool create(linattn_dtype dtype, const std::vector<int64_t>& shape, std::string* error);
  // Makes a device copy (allocate + upload) for LINATTN_MEMORY_CUDA; a no-op for the host.
  bool stage(linattn_memory memory, std::string* error);
  bool upload(std::string* error);    // host -> device copy (no-op on the host)
  bool download(std::string* error);  // device -> host copy (no-op on the host)
  linattn_tensor view();              // contiguous view on the staged memory
  linattn_tensor host_view();         // contiguous view of the host copy
  linattn_memory memory() const { return memory_; }
  int64_t numel() const { return host.numel(); }
  // Fills the host copy (upload separately).
  void fill(double value);
  template <class F>
  void fill_with(F&& f) {
    const int64_t n = numel();
    for (int64_t i = 0; i < n; ++i) store_element(host.data(), host.dtype, i, f());
  }

 private:
  linattn_memory memory_ = LINATTN_MEMORY_HOST;
  DeviceBuffer device_;
};

// The view of an npy array on the host (rank must be <= LINATTN_MAX_RANK).
linattn_tensor array_view(npy::Array& a);

}  // namespace linattn::tool
