// A float32 exp that GCC can vectorise (std::exp stays a scalar libm call without -ffast-math):
// range reduction x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts so n ln2 is exact),
// a degree-6 polynomial for e^r, and 2^n assembled in the exponent bits. About 2 ulp over the
// clamped range, far below the 1e-5 relative tolerance the float32 paths are held to.
#pragma once

#include <bit>
#include <cstdint>

namespace linattn::detail::cpu {

inline float fast_exp(float x) {
  // Clamp to where e^x is a normal float; silu(x) only needs the limits to saturate cleanly.
  x = x < -87.0f ? -87.0f : x;  // two plain selects: both become SIMD min/max
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln2) with the 1.5 * 2^23 trick (exact for |x / ln2| < 2^22, no SSE4.1 needed).
  constexpr float kShift = 12582912.0f;
  const float n = (x * 1.44269504088896341f + kShift) - kShift;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * std::bit_cast<float>(bits);
}

}  // namespace linattn::detail::cpu
