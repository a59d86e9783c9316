#include "tensor_data.hpp"

#include <cmath>
#include <cstring>

#include "half.hpp"

namespace linattn::tool {

double load_element(const void* base, linattn_dtype dtype, int64_t offset) {
  switch (dtype) {
    case LINATTN_FLOAT32: return static_cast<const float*>(base)[offset];
    case LINATTN_FLOAT64: return static_cast<const double*>(base)[offset];
    case LINATTN_FLOAT16: return f16_to_float(static_cast<const uint16_t*>(base)[offset]);
    case LINATTN_BFLOAT16: return bf16_to_float(static_cast<const uint16_t*>(base)[offset]);
    case LINATTN_INT32: return static_cast<const int32_t*>(base)[offset];
    case LINATTN_INT64: return static_cast<double>(static_cast<const int64_t*>(base)[offset]);
  }
  return NAN;
}

void store_element(void* base, linattn_dtype dtype, int64_t offset, double value) {
  switch (dtype) {
    case LINATTN_FLOAT32: static_cast<float*>(base)[offset] = static_cast<float>(value); break;
    case LINATTN_FLOAT64: static_cast<double*>(base)[offset] = value; break;
    case LINATTN_FLOAT16:
      static_cast<uint16_t*>(base)[offset] = float_to_f16(static_cast<float>(value));
      break;
    case LINATTN_BFLOAT16:
      static_cast<uint16_t*>(base)[offset] = float_to_bf16(static_cast<float>(value));
      break;
    case LINATTN_INT32: static_cast<int32_t*>(base)[offset] = static_cast<int32_t>(value); break;
    case LINATTN_INT64: static_cast<int64_t*>(base)[offset] = static_cast<int64_t>(value); break;
  }
}

float round_to(linattn_dtype dtype, float value) {
  switch (dtype) {
    case LINATTN_FLOAT16: return f16_to_float(float_to_f16(value));
    case LINATTN_BFLOAT16: return bf16_to_float(float_to_bf16(value));
    default: return value;
  }
}

void ErrorAccumulator::add(const linattn_tensor& got, const linattn_tensor& want) {
  std::vector<double> a, b;
  for_each_offset(got, [&](int64_t o) { a.push_back(load_element(got.data, got.dtype, o)); });
  for_each_offset(want, [&](int64_t o) { b.push_back(load_element(want.data, want.dtype, o)); });
  if (a.size() != b.size()) {
    mismatch = true;
    return;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i])) nonfinite = true;
    diff2 += (a[i] - b[i]) * (a[i] - b[i]);
    ref2 += b[i] * b[i];
  }
}

double ErrorAccumulator::relative() const {
  if (nonfinite || mismatch) return NAN;
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
}

double relative_error(const linattn_tensor& got, const linattn_tensor& want) {
  ErrorAccumulator acc;
  acc.add(got, want);
  return acc.relative();
}

void l2_normalise_heads(const linattn_tensor& t, int64_t head_dim) {
  if (t.rank != 3 || head_dim <= 0) return;
  const int64_t heads = t.shape[2] / head_dim;
  std::vector<double> v(static_cast<size_t>(head_dim));
  for (int64_t b = 0; b < t.shape[0]; ++b)
    for (int64_t s = 0; s < t.shape[1]; ++s)
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t base = b * t.strides[0] + s * t.strides[1] + h * head_dim;
        double norm2 = 0;
        for (int64_t i = 0; i < head_dim; ++i) {
          v[i] = load_element(t.data, t.dtype, base + i);
          norm2 += v[i] * v[i];
        }
        const double inv = 1.0 / std::sqrt(norm2 + 1e-6);
        for (int64_t i = 0; i < head_dim; ++i) store_element(t.data, t.dtype, base + i, v[i] * inv);
      }
}

linattn_tensor subview(const linattn_tensor& base, int64_t offset, std::vector<int64_t> shape,
                       std::vector<int64_t> strides) {
  linattn_tensor t = base;
  t.data = static_cast<char*>(base.data) + offset * static_cast<int64_t>(linattn_dtype_size(base.dtype));
  t.rank = static_cast<int32_t>(shape.size());
  for (int i = 0; i < LINATTN_MAX_RANK; ++i) {
    t.shape[i] = i < t.rank ? shape[i] : 0;
    t.strides[i] = i < t.rank ? strides[i] : 0;
  }
  return t;
}

linattn_tensor array_view(npy::Array& a) {
  int64_t dims[LINATTN_MAX_RANK] = {0, 0, 0, 0};
  const int rank = static_cast<int>(a.shape.size());
  for (int i = 0; i < rank && i < LINATTN_MAX_RANK; ++i) dims[i] = a.shape[i];
  return linattn_tensor_contiguous(a.data(), a.dtype, LINATTN_MEMORY_HOST,
                                   rank > LINATTN_MAX_RANK ? 0 : rank, dims);
}

bool Tensor::create(linattn_dtype dtype, const std::vector<int64_t>& shape, std::string* error) {
  memory_ = LINATTN_MEMORY_HOST;
  device_ = DeviceBuffer();
  return npy::make_array(dtype, shape, &host, error);
}

bool Tensor::stage(linattn_memory memory, std::string* error) {
  memory_ = memory;
  if (memory != LINATTN_MEMORY_CUDA) return true;
  if (!device_.allocate(host.bytes.size(), error)) return false;
  return upload(error);
}

bool Tensor::upload(std::string* error) {
  if (memory_ != LINATTN_MEMORY_CUDA) return true;
  return device_.upload(host.data(), host.bytes.size(), error);
}

bool Tensor::download(std::string* error) {
  if (memory_ != LINATTN_MEMORY_CUDA) return true;
  return device_.download(host.data(), host.bytes.size(), error);
}

linattn_tensor Tensor::host_view() { return array_view(host); }

linattn_tensor Tensor::view() {
  linattn_tensor t = array_view(host);
  if (memory_ == LINATTN_MEMORY_CUDA) {
    t.data = device_.data();
    t.memory = LINATTN_MEMORY_CUDA;
  }
  return t;
}

void Tensor::fill(double value) {
  const int64_t n = numel();
  for (int64_t i = 0; i < n; ++i) store_element(host.data(), host.dtype, i, value);
}

}  // namespace linattn::tool
