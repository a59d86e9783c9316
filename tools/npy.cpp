#include "npy.hpp"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

namespace linattn::npy {
namespace {

constexpr unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
// A header longer than this is not something NumPy writes for a plain array; refusing it keeps
// a corrupt length field from making us allocate gigabytes.
constexpr size_t kMaxHeaderLength = 1u << 20;
// Bytes we accept to hold in memory for one array (1 TiB): beyond it the shape is corrupt.
constexpr uint64_t kMaxDataBytes = uint64_t{1} << 40;

size_t size_of(linattn_dtype dtype) {
  switch (dtype) {
    case LINATTN_FLOAT32: return 4;
    case LINATTN_FLOAT16: return 2;
    case LINATTN_BFLOAT16: return 2;
    case LINATTN_FLOAT64: return 8;
    case LINATTN_INT32: return 4;
    case LINATTN_INT64: return 8;
  }
  return 0;
}

bool fail(std::string* error, const std::string& name, const std::string& what) {
  if (error) *error = name + ": " + what;
  return false;
}

// Product of the dims, or false when one is negative or the product overflows kMaxDataBytes.
bool checked_numel(const std::vector<int64_t>& shape, size_t elem, int64_t* numel) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d != 0 && n > kMaxDataBytes / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  if (elem != 0 && n > kMaxDataBytes / elem) return false;
  *numel = static_cast<int64_t>(n);
  return true;
}

// A minimal reader of the Python dict literal in the header, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(const std::string& text) : s_(text) {}

  bool parse(std::string* descr, bool* fortran, std::vector<int64_t>* shape, std::string* why) {
    bool have_descr = false, have_fortran = false, have_shape = false;
    skip_space();
    if (!eat('{')) return bad(why, "the header is not a dict literal");
    while (true) {
      skip_space();
      if (eat('}')) break;
      std::string key;
      if (!string_literal(&key)) return bad(why, "expected a quoted key in the header");
      skip_space();
      if (!eat(':')) return bad(why, "expected ':' after key '" + key + "'");
      skip_space();
      if (key == "descr") {
        if (!string_literal(descr)) return bad(why, "'descr' is not a string");
        have_descr = true;
      } else if (key == "fortran_order") {
        if (word("True")) *fortran = true;
        else if (word("False")) *fortran = false;
        else return bad(why, "'fortran_order' is not True or False");
        have_fortran = true;
      } else if (key == "shape") {
        if (!tuple(shape, why)) return false;
        have_shape = true;
      } else {
        return bad(why, "unexpected header key '" + key + "'");
      }
      skip_space();
      if (eat(',')) continue;
      skip_space();
      if (eat('}')) break;
      return bad(why, "expected ',' or '}' in the header");
    }
    skip_space();
    if (pos_ != s_.size()) return bad(why, "trailing characters after the header dict");
    if (!have_descr || !have_fortran || !have_shape)
      return bad(why, "the header lacks one of 'descr', 'fortran_order', 'shape'");
    return true;
  }

 private:
  static bool bad(std::string* why, const std::string& w) {
    *why = w;
    return false;
  }
  void skip_space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool eat(char c) {
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool word(const char* w) {
    size_t n = std::strlen(w);
    if (s_.compare(pos_, n, w) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }
  bool string_literal(std::string* out) {
    if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"')) return false;
    char quote = s_[pos_++];
    size_t end = s_.find(quote, pos_);
    if (end == std::string::npos) return false;
    *out = s_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }
  bool tuple(std::vector<int64_t>* shape, std::string* why) {
    shape->clear();
    if (!eat('(')) return bad(why, "'shape' is not a tuple");
    while (true) {
      skip_space();
      if (eat(')')) return true;
      if (pos_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[pos_])))
        return bad(why, "'shape' holds something other than non-negative integers");
      int64_t v = 0;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        int digit = s_[pos_++] - '0';
        if (v > (std::numeric_limits<int64_t>::max() - digit) / 10)
          return bad(why, "a 'shape' dimension overflows int64");
        v = v * 10 + digit;
      }
      // Python writes 'L' suffixes in very old files.
      eat('L');
      shape->push_back(v);
      if (shape->size() > 32) return bad(why, "'shape' has more than 32 dimensions");
      skip_space();
      if (eat(',')) continue;
      skip_space();
      if (eat(')')) return true;
      return bad(why, "expected ',' or ')' in 'shape'");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
};

bool dtype_from_descr(const std::string& descr, linattn_dtype* out) {
  // '|' and '=' mean "not applicable" / native order; every supported host is little-endian.
  if (descr == "<f4" || descr == "=f4") *out = LINATTN_FLOAT32;
  else if (descr == "<f2" || descr == "=f2") *out = LINATTN_FLOAT16;
  else if (descr == "<f8" || descr == "=f8") *out = LINATTN_FLOAT64;
  else if (descr == "<V2" || descr == "|V2" || descr == "bfloat16" || descr == "<bfloat16")
    *out = LINATTN_BFLOAT16;
  else if (descr == "<i4" || descr == "=i4") *out = LINATTN_INT32;
  else if (descr == "<i8" || descr == "=i8") *out = LINATTN_INT64;
  else return false;
  return true;
}

}  // namespace

size_t Array::element_size() const { return size_of(dtype); }

int64_t Array::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string descr_for(linattn_dtype dtype) {
  switch (dtype) {
    case LINATTN_FLOAT32: return "<f4";
    case LINATTN_FLOAT16: return "<f2";
    case LINATTN_BFLOAT16: return "<V2";
    case LINATTN_FLOAT64: return "<f8";
    case LINATTN_INT32: return "<i4";
    case LINATTN_INT64: return "<i8";
  }
  return "";
}

bool make_array(linattn_dtype dtype, const std::vector<int64_t>& shape, Array* out,
                std::string* error) {
  size_t elem = size_of(dtype);
  int64_t numel = 0;
  if (elem == 0) return fail(error, "array", "unknown dtype");
  if (!checked_numel(shape, elem, &numel))
    return fail(error, "array", "shape has a negative dimension or its size overflows");
  out->dtype = dtype;
  out->shape = shape;
  out->bytes.assign(static_cast<size_t>(numel) * elem, 0);
  return true;
}

bool parse(const unsigned char* bytes, size_t size, const std::string& name, Array* out,
           std::string* error) {
  if (size < 10 || std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0)
    return fail(error, name, "not a .npy file (bad magic string)");
  const unsigned major = bytes[6], minor = bytes[7];
  size_t header_len = 0, header_start = 0;
  if (major == 1) {
    header_len = bytes[8] | (static_cast<size_t>(bytes[9]) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return fail(error, name, "truncated .npy header");
    header_len = bytes[8] | (static_cast<size_t>(bytes[9]) << 8) |
                 (static_cast<size_t>(bytes[10]) << 16) | (static_cast<size_t>(bytes[11]) << 24);
    header_start = 12;
  } else {
    return fail(error, name,
                "unsupported .npy format version " + std::to_string(major) + "." +
                    std::to_string(minor) + " (expected 1.0, 2.0 or 3.0)");
  }
  if (header_len > kMaxHeaderLength)
    return fail(error, name, "the .npy header length " + std::to_string(header_len) +
                                 " is implausible");
  if (header_start + header_len > size)
    return fail(error, name, "truncated .npy header: it claims " + std::to_string(header_len) +
                                 " bytes, the file has " + std::to_string(size - header_start));
  // Version 3.0 headers are UTF-8; the keys and values we accept are all ASCII anyway.
  std::string header(reinterpret_cast<const char*>(bytes + header_start), header_len);
  std::string descr, why;
  bool fortran = false;
  std::vector<int64_t> shape;
  if (!HeaderParser(header).parse(&descr, &fortran, &shape, &why))
    return fail(error, name, "malformed .npy header: " + why);
  if (fortran)
    return fail(error, name, "fortran_order True is not supported; save a C-ordered array "
                             "(np.ascontiguousarray)");
  linattn_dtype dtype;
  if (!dtype_from_descr(descr, &dtype))
    return fail(error, name, "unsupported dtype '" + descr +
                                 "' (expected little-endian '<f4', '<f2', '<f8', or bfloat16 "
                                 "as '<V2')");
  const size_t elem = size_of(dtype);
  int64_t numel = 0;
  if (!checked_numel(shape, elem, &numel))
    return fail(error, name, "the shape's size overflows (or exceeds 1 TiB)");
  const uint64_t want = static_cast<uint64_t>(numel) * elem;
  const uint64_t have = size - header_start - header_len;
  if (have < want)
    return fail(error, name, "truncated data: the shape needs " + std::to_string(want) +
                                 " bytes, the file holds " + std::to_string(have));
  if (have > want)
    return fail(error, name, "data size mismatch: the shape needs " + std::to_string(want) +
                                 " bytes, the file holds " + std::to_string(have));
  out->dtype = dtype;
  out->shape = std::move(shape);
  const unsigned char* data = bytes + header_start + header_len;
  out->bytes.assign(data, data + want);
  return true;
}

bool read(const std::string& path, Array* out, std::string* error) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) return fail(error, path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<unsigned char> bytes;
  unsigned char buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) bytes.insert(bytes.end(), buf, buf + n);
  if (std::ferror(f.get())) return fail(error, path, "read error");
  return parse(bytes.data(), bytes.size(), path, out, error);
}

bool serialize(const Array& array, std::vector<unsigned char>* out, std::string* error) {
  const std::string descr = descr_for(array.dtype);
  const size_t elem = size_of(array.dtype);
  int64_t numel = 0;
  if (descr.empty() || elem == 0) return fail(error, "array", "dtype cannot be written to .npy");
  if (!checked_numel(array.shape, elem, &numel) ||
      static_cast<uint64_t>(numel) * elem != array.bytes.size())
    return fail(error, "array", "the byte count does not match the shape");
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < array.shape.size(); ++i) {
    dict += std::to_string(array.shape[i]);
    if (array.shape.size() == 1 || i + 1 < array.shape.size()) dict += ",";
    if (i + 1 < array.shape.size()) dict += " ";
  }
  dict += "), }";
  // Pad with spaces and a final newline so that the data starts on a 64-byte boundary.
  size_t prefix = 10;
  size_t total = prefix + dict.size() + 1;
  bool v2 = false;
  if (((total + 63) / 64) * 64 - prefix > 0xffff) {
    v2 = true;
    prefix = 12;
    total = prefix + dict.size() + 1;
  }
  size_t padded = ((total + 63) / 64) * 64;
  dict.append(padded - total, ' ');
  dict += '\n';
  const size_t header_len = dict.size();
  unsigned char prefix_bytes[12];
  std::memcpy(prefix_bytes, kMagic, 6);
  prefix_bytes[6] = v2 ? 2 : 1;
  prefix_bytes[7] = 0;
  for (size_t i = 0; i + 8 < prefix; ++i)
    prefix_bytes[8 + i] = static_cast<unsigned char>((header_len >> (8 * i)) & 0xff);
  out->resize(prefix + header_len + array.bytes.size());
  std::memcpy(out->data(), prefix_bytes, prefix);
  std::memcpy(out->data() + prefix, dict.data(), header_len);
  if (!array.bytes.empty())
    std::memcpy(out->data() + prefix + header_len, array.bytes.data(), array.bytes.size());
  return true;
}

bool write(const std::string& path, const Array& array, std::string* error) {
  std::vector<unsigned char> image;
  if (!serialize(array, &image, error)) {
    if (error) *error = path + ": " + error->substr(error->find(':') + 2);
    return false;
  }
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return fail(error, path, std::string("cannot create: ") + std::strerror(errno));
  if (std::fwrite(image.data(), 1, image.size(), f.get()) != image.size())
    return fail(error, path, "write error");
  if (std::fclose(f.release()) != 0) return fail(error, path, "write error on close");
  return true;
}

}  // namespace linattn::npy
