#include "common/host_tensor.hpp"

#include <cmath>
#include <cstring>
#include <utility>

#include "core/dtype.hpp"

namespace linattn::test {

size_t dtype_bytes(linattn_dtype dtype) {
  switch (dtype) {
    case LINATTN_FLOAT16:
    case LINATTN_BFLOAT16: return 2;
    case LINATTN_FLOAT64:
    case LINATTN_INT64: return 8;
    default: return 4;
  }
}

const char* dtype_short_name(linattn_dtype dtype) {
  switch (dtype) {
    case LINATTN_FLOAT32: return "f32";
    case LINATTN_FLOAT16: return "f16";
    case LINATTN_BFLOAT16: return "bf16";
    case LINATTN_FLOAT64: return "f64";
    case LINATTN_INT32: return "i32";
    case LINATTN_INT64: return "i64";
  }
  return "?";
}

double round_to(linattn_dtype dtype, double x) {
  switch (dtype) {
    case LINATTN_FLOAT32: return static_cast<float>(x);
    case LINATTN_FLOAT16:
      return detail::f16_bits_to_float(detail::float_to_f16_bits(static_cast<float>(x)));
    case LINATTN_BFLOAT16:
      return detail::bf16_bits_to_float(detail::float_to_bf16_bits(static_cast<float>(x)));
    default: return x;
  }
}

HostTensor::HostTensor(linattn_dtype dtype, std::vector<int64_t> shape, bool strided)
    : dtype_(dtype), shape_(std::move(shape)) {
  const int r = rank();
  strides_.assign(r, 1);
  for (int i = r - 2; i >= 0; --i) {
    // Uneven pads (3 after a row, 5 after larger blocks) so no two dims share a stride pattern.
    const int64_t pad = strided ? (i == r - 2 ? 3 : 5) : 0;
    strides_[i] = strides_[i + 1] * shape_[i + 1] + pad;
  }
  storage_elems_ = r > 0 ? strides_[0] * shape_[0] : 0;
  if (strided && r > 0) storage_elems_ += 7;  // trailing padding catches overruns at the end
  const size_t words = (storage_bytes() + 7) / 8;
  storage_.assign(words > 0 ? words : 1, 0);
}

int64_t HostTensor::numel() const {
  if (shape_.empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

size_t HostTensor::storage_bytes() const {
  return static_cast<size_t>(storage_elems_) * dtype_bytes(dtype_);
}

linattn_tensor HostTensor::view(linattn_memory memory, void* data) const {
  linattn_tensor t{};
  t.dtype = dtype_;
  t.memory = memory;
  t.rank = rank();
  if (t.rank == 0) {
    t.data = nullptr;
    return t;
  }
  t.data = data != nullptr ? data : const_cast<uint64_t*>(storage_.data());
  for (int i = 0; i < t.rank && i < LINATTN_MAX_RANK; ++i) {
    t.shape[i] = shape_[i];
    t.strides[i] = strides_[i];
  }
  return t;
}

double HostTensor::get(int64_t i) const {
  const void* base = storage_.data();
  switch (dtype_) {
    case LINATTN_FLOAT64: return static_cast<const double*>(base)[i];
    case LINATTN_INT32: return static_cast<const int32_t*>(base)[i];
    case LINATTN_INT64: return static_cast<double>(static_cast<const int64_t*>(base)[i]);
    default: return detail::load_as_float(base, i, dtype_);
  }
}

void HostTensor::set(int64_t i, double x) {
  void* base = storage_.data();
  switch (dtype_) {
    case LINATTN_FLOAT64: static_cast<double*>(base)[i] = x; break;
    case LINATTN_INT32: static_cast<int32_t*>(base)[i] = static_cast<int32_t>(x); break;
    case LINATTN_INT64: static_cast<int64_t*>(base)[i] = static_cast<int64_t>(x); break;
    default: detail::store_from_float(base, i, dtype_, static_cast<float>(x)); break;
  }
}

std::vector<int64_t> HostTensor::logical_offsets() const {
  std::vector<int64_t> out;
  const int64_t n = numel();
  if (n == 0) return out;
  out.reserve(static_cast<size_t>(n));
  const int r = rank();
  std::vector<int64_t> idx(r, 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t off = 0;
    for (int d = 0; d < r; ++d) off += idx[d] * strides_[d];
    out.push_back(off);
    for (int d = r - 1; d >= 0; --d) {
      if (++idx[d] < shape_[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

std::vector<double> HostTensor::values() const {
  std::vector<double> out;
  for (int64_t off : logical_offsets()) out.push_back(get(off));
  return out;
}

void HostTensor::set_values(const std::function<double(int64_t)>& f) {
  int64_t e = 0;
  for (int64_t off : logical_offsets()) set(off, f(e++));
}

void HostTensor::fill_storage(double x) {
  for (int64_t i = 0; i < storage_elems_; ++i) set(i, x);
}

int64_t HostTensor::count_nan() const {
  int64_t n = 0;
  for (int64_t off : logical_offsets()) n += std::isnan(get(off)) ? 1 : 0;
  return n;
}

bool HostTensor::padding_is_nan() const {
  std::vector<char> logical(static_cast<size_t>(storage_elems_), 0);
  for (int64_t off : logical_offsets()) logical[off] = 1;
  for (int64_t i = 0; i < storage_elems_; ++i)
    if (!logical[i] && !std::isnan(get(i))) return false;
  return true;
}

HostTensor HostTensor::converted(linattn_dtype dtype, bool strided) const {
  if (!present()) return HostTensor();
  HostTensor out(dtype, shape_, strided);
  out.poison();
  const std::vector<double> v = values();
  out.set_values([&](int64_t e) { return v[e]; });
  return out;
}

linattn_tensor slice_view(const linattn_tensor& view, int dim, int64_t begin, int64_t end) {
  linattn_tensor t = view;
  t.shape[dim] = end - begin;
  if (t.data != nullptr)
    t.data = static_cast<char*>(t.data) +
             begin * t.strides[dim] * static_cast<int64_t>(dtype_bytes(t.dtype));
  return t;
}

}  // namespace linattn::test
