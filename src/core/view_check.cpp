#include "core/view_check.hpp"

#include <sstream>

namespace linattn::detail {

std::string dtype_string(int t) {
  switch (t) {
    case LINATTN_FLOAT32: return "float32";
    case LINATTN_FLOAT16: return "float16";
    case LINATTN_BFLOAT16: return "bfloat16";
    case LINATTN_FLOAT64: return "float64";
    case LINATTN_INT32: return "int32";
    case LINATTN_INT64: return "int64";
  }
  return "dtype(" + std::to_string(t) + ")";
}

size_t dtype_bytes(int t) {
  switch (t) {
    case LINATTN_FLOAT32: return 4;
    case LINATTN_FLOAT16: return 2;
    case LINATTN_BFLOAT16: return 2;
    case LINATTN_FLOAT64: return 8;
    case LINATTN_INT32: return 4;
    case LINATTN_INT64: return 8;
  }
  return 0;
}

namespace {

bool rank_in_range(int32_t r) { return r >= 1 && r <= LINATTN_MAX_RANK; }

std::string list_string(const int64_t* v, int32_t n) {
  std::ostringstream s;
  s << '(';
  for (int32_t i = 0; i < n; ++i) s << (i ? ", " : "") << v[i];
  s << ')';
  return s.str();
}

const char* memory_string(linattn_memory m) {
  switch (m) {
    case LINATTN_MEMORY_HOST: return "host";
    case LINATTN_MEMORY_CUDA: return "cuda";
  }
  return "unknown";
}

const char* backend_string(linattn_backend b) {
  switch (b) {
    case LINATTN_BACKEND_CPU: return "cpu";
    case LINATTN_BACKEND_CUDA: return "cuda";
    case LINATTN_BACKEND_REFERENCE: return "reference";
  }
  return "unknown";
}

}  // namespace

std::string shape_string(const linattn_tensor& t) {
  if (t.rank == 0) return "()";
  if (!rank_in_range(t.rank)) return "<rank " + std::to_string(t.rank) + ">";
  return list_string(t.shape, t.rank);
}

std::string strides_string(const linattn_tensor& t) {
  if (!rank_in_range(t.rank)) return "()";
  return list_string(t.strides, t.rank);
}

Status check_view(const char* op, const char* name, const linattn_tensor& t, int rank,
                  const char* layout, linattn_backend backend, ByteSpan* span) {
  // The message is built only when a rule is broken: this runs for every view of every call.
  const auto fail = [&](const auto&... parts) {
    std::ostringstream m;
    m << op << ": " << name << ' ';
    (m << ... << parts);
    return invalid(m.str());
  };
  if (t.rank != rank) {
    if (rank_in_range(t.rank)) {
      return fail("has rank ", t.rank, " with shape ", shape_string(t), "; expected rank ", rank,
                  ' ', layout);
    }
    return fail("has invalid rank ", t.rank, "; expected rank ", rank, ' ', layout);
  }
  for (int i = 0; i < rank; ++i) {
    if (t.shape[i] < 0) {
      return fail("has shape ", shape_string(t), " with negative dimension ", i, "; expected ",
                  layout);
    }
  }
  const size_t esize = dtype_bytes(enum_value(t.dtype));
  if (esize == 0) return fail("has unknown dtype value ", enum_value(t.dtype));
  const int mem = enum_value(t.memory);
  if (mem != LINATTN_MEMORY_HOST && mem != LINATTN_MEMORY_CUDA) {
    return fail("has unknown memory space value ", mem);
  }
  const linattn_memory want =
      backend == LINATTN_BACKEND_CUDA ? LINATTN_MEMORY_CUDA : LINATTN_MEMORY_HOST;
  if (t.memory != want) {
    return fail("is in ", memory_string(t.memory), " memory; the ", backend_string(backend),
                " backend needs every tensor in ", memory_string(want), " memory (",
                want == LINATTN_MEMORY_HOST ? "LINATTN_MEMORY_HOST" : "LINATTN_MEMORY_CUDA", ')');
  }
  if (t.strides[rank - 1] != 1) {
    return fail("has shape ", shape_string(t), " and strides ", strides_string(t),
                "; the innermost stride must be 1 (strides count elements)");
  }
  for (int i = 0; i < rank - 1; ++i) {
    if (t.strides[i] < 0) {
      return fail("has shape ", shape_string(t), " and strides ", strides_string(t), "; stride ",
                  i, " is negative");
    }
  }
  // Element count and the largest element offset, both without overflow.
  int64_t numel = 1;
  for (int i = 0; i < rank; ++i) {
    if (__builtin_mul_overflow(numel, t.shape[i], &numel)) {
      return fail("has shape ", shape_string(t), ", whose element count overflows int64");
    }
  }
  int64_t max_offset = 0;
  if (numel > 0) {
    for (int i = 0; i < rank; ++i) {
      int64_t term;
      if (__builtin_mul_overflow(t.shape[i] - 1, t.strides[i], &term) ||
          __builtin_add_overflow(max_offset, term, &max_offset)) {
        return fail("has shape ", shape_string(t), " and strides ", strides_string(t),
                    ", whose largest element offset overflows int64");
      }
    }
    int64_t bytes;
    if (__builtin_add_overflow(max_offset, int64_t{1}, &bytes) ||
        __builtin_mul_overflow(bytes, static_cast<int64_t>(esize), &bytes)) {
      return fail("has shape ", shape_string(t), " and strides ", strides_string(t),
                  ", whose size in bytes overflows int64");
    }
    if (t.data == nullptr) {
      return fail("has shape ", shape_string(t), " (", numel,
                  " elements) but a null data pointer");
    }
    const uintptr_t begin = reinterpret_cast<uintptr_t>(t.data);
    uintptr_t end;
    if (__builtin_add_overflow(begin, static_cast<uintptr_t>(bytes), &end)) {
      return fail("spans past the end of the address space (data pointer plus ", bytes,
                  " bytes)");
    }
    if (span) *span = ByteSpan{begin, end};
  } else if (span) {
    *span = ByteSpan{};
  }
  return Status::ok_status();
}

Status check_float_dtype(const char* op, const char* name, linattn_dtype t,
                         linattn_backend backend) {
  if (t == LINATTN_FLOAT32 || t == LINATTN_FLOAT16 || t == LINATTN_BFLOAT16) {
    return Status::ok_status();
  }
  std::ostringstream m;
  m << op << ": " << name << " has dtype " << dtype_string(t);
  if (t == LINATTN_FLOAT64) {
    if (backend == LINATTN_BACKEND_REFERENCE) return Status::ok_status();
    m << ", which only the reference backend accepts; the " << backend_string(backend)
      << " backend takes float32, float16 or bfloat16";
    return unsupported(m.str());
  }
  m << "; expected float32, float16 or bfloat16"
    << (backend == LINATTN_BACKEND_REFERENCE ? " (or float64 on the reference backend)" : "");
  return invalid(m.str());
}

Status check_no_self_overlap(const char* op, const char* name, const linattn_tensor& t) {
  // Dims of extent 1 never step, so their strides are irrelevant; an empty view writes nothing.
  int dims[LINATTN_MAX_RANK];
  int n = 0;
  for (int i = 0; i < t.rank; ++i) {
    if (t.shape[i] == 0) return Status::ok_status();
    if (t.shape[i] > 1) dims[n++] = i;
  }
  // Insertion sort by stride: at most four dims.
  for (int k = 1; k < n; ++k) {
    for (int j = k; j > 0 && t.strides[dims[j]] < t.strides[dims[j - 1]]; --j) {
      const int tmp = dims[j];
      dims[j] = dims[j - 1];
      dims[j - 1] = tmp;
    }
  }
  int64_t block = 1;  // elements spanned by the dims already visited (checked: fits int64)
  for (int k = 0; k < n; ++k) {
    const int i = dims[k];
    if (t.strides[i] < block) {
      std::ostringstream m;
      m << op << ": " << name << " has shape " << shape_string(t) << " and strides "
        << strides_string(t) << ": stride " << i << " (" << t.strides[i]
        << ") is smaller than " << block
        << ", the span in elements of the dims inside it, so elements overlap (an output "
           "must not alias itself)";
      return invalid(m.str());
    }
    block = t.strides[i] * (t.shape[i] - 1) + block;
  }
  return Status::ok_status();
}

bool same_view(const linattn_tensor& a, const linattn_tensor& b) {
  if (a.data != b.data || a.dtype != b.dtype || a.memory != b.memory || a.rank != b.rank) {
    return false;
  }
  for (int i = 0; i < a.rank && i < LINATTN_MAX_RANK; ++i) {
    if (a.shape[i] != b.shape[i]) return false;
    if (a.shape[i] > 1 && a.strides[i] != b.strides[i]) return false;
  }
  return true;
}

}  // namespace linattn::detail
