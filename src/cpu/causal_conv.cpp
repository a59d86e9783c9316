// CausalConvWithState on the CPU, float32 math (SEMANTICS.md): P = concat(past or zeros, input),
// y[l] = act(bias + sum_j w[j] P[l+j]), present_state = the last k-1 columns of P.
//
// Two loop orders, chosen by the memory layout so the innermost loop runs over contiguous data:
// - channels last (channel stride 1): a block of channels per work item; the k most recent
//   input rows live in a ring of k rows (the past state seeds the first k-1), so each output row
//   is k fused multiply-adds over contiguous channel rows and the state is never copied whole.
// - channels first (time stride 1): one channel per step; its k-1 past values and L inputs form
//   one contiguous row, and the outputs are accumulated over time, tap by tap.
// These are the portable loops; with AVX2 or AVX-512 the same two loop orders run from
// conv_kernel.hpp (vectorised SiLU, 16-bit rows converted in registers).
// Floating-point exceptions are never inspected by the library; without trapping math GCC may
// turn the clamps in fast_exp into SIMD min/max and vectorise the fused SiLU.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/backend.hpp"
#include "core/thread_pool.hpp"
#include "core/view_check.hpp"
#include "cpu/conv.hpp"
#include "cpu/conv_decode.hpp"
#include "cpu/fast_exp.hpp"
#include "cpu/float_rows.hpp"
#include "cpu/serving_rows.hpp"

namespace linattn::detail::cpu {
namespace {

constexpr int64_t kChannelBlock = 256;  // channels per work item in the channels-last kernel
constexpr int64_t kChannelGroup = 16;   // channels per work item in the channels-first kernel
constexpr int64_t kDecodeBlock = 2048;  // channels per work item in the k = 4 decode kernel

inline void grow(std::vector<float>& b, int64_t n) {
  if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
}

inline void activate(float* __restrict y, int64_t n, bool silu) {
  if (!silu) return;
  for (int64_t i = 0; i < n; ++i) y[i] = y[i] / (1.f + fast_exp(-y[i]));
}

struct ChannelsLastScratch {
  std::vector<float> w, bias, ring, acc;
};

// Channels c0 .. c0+n-1 of batch b; channel stride 1 for the input and output rows.
void conv_channels_last(const CausalConvParams& p, int64_t b, int64_t c0, int64_t n,
                        ChannelsLastScratch& sc) {
  const int64_t K = p.K, S = K - 1, L = p.L;
  const linattn_dtype at = p.act_dtype;
  grow(sc.w, K * n);
  grow(sc.bias, n);
  grow(sc.ring, K * n);
  grow(sc.acc, n);
  float* __restrict w = sc.w.data();  // w[j*n + c]: tap-major, so each tap is a contiguous row
  float* __restrict ring = sc.ring.data();  // P[m] lives in ring row m % K
  float* __restrict acc = sc.acc.data();

  for (int64_t c = 0; c < n; ++c)
    for (int64_t j = 0; j < K; ++j)
      w[j * n + c] = load_as_float(p.w, (c0 + c) * p.w_sc + j * p.w_sk, at);
  if (p.bias != nullptr) {
    for (int64_t c = 0; c < n; ++c) sc.bias[c] = load_as_float(p.bias, (c0 + c) * p.bias_sc, at);
  } else {
    std::fill(sc.bias.begin(), sc.bias.begin() + n, 0.f);
  }

  // P[0 .. k-2] = past (or zeros), read in full before anything is stored.
  for (int64_t j = 0; j < S; ++j) {
    float* __restrict row = ring + j * n;
    if (p.past != nullptr) {
      for (int64_t c = 0; c < n; ++c)
        row[c] = load_as_float(p.past, b * p.past_sb + (c0 + c) * p.past_sc + j, p.past_dtype);
    } else {
      for (int64_t c = 0; c < n; ++c) row[c] = 0.f;
    }
  }

  for (int64_t l = 0; l < L; ++l) {
    // P[l + k - 1] = x[l]
    load_row(p.x, b * p.x_sb + c0 * p.x_sc + l * p.x_sl, n, at, ring + ((l + S) % K) * n);
    for (int64_t c = 0; c < n; ++c) acc[c] = sc.bias[c];
    for (int64_t j = 0; j < K; ++j) {
      const float* __restrict pj = ring + ((l + j) % K) * n;
      const float* __restrict wj = w + j * n;
      for (int64_t c = 0; c < n; ++c) acc[c] += wj[c] * pj[c];
    }
    activate(acc, n, p.silu);
    store_row(p.y, b * p.y_sb + c0 * p.y_sc + l * p.y_sl, n, at, acc);
  }

  // present = P[L .. L+k-2]
  for (int64_t j = 0; j < S; ++j) {
    const float* row = ring + ((L + j) % K) * n;
    for (int64_t c = 0; c < n; ++c)
      store_from_float(p.present, b * p.pres_sb + (c0 + c) * p.pres_sc + j, p.present_dtype,
                       row[c]);
  }
}

struct ChannelsFirstScratch {
  std::vector<float> P, acc, w;
};

// One channel c of batch b; any strides, contiguous over time in the usual layout.
void conv_channels_first(const CausalConvParams& p, int64_t b, int64_t c,
                         ChannelsFirstScratch& sc) {
  const int64_t K = p.K, S = K - 1, L = p.L;
  const linattn_dtype at = p.act_dtype;
  grow(sc.P, S + L);
  grow(sc.acc, L);
  grow(sc.w, K);
  float* __restrict P = sc.P.data();
  float* __restrict acc = sc.acc.data();

  if (p.past != nullptr) {
    load_row(p.past, b * p.past_sb + c * p.past_sc, S, p.past_dtype, P);
  } else {
    for (int64_t j = 0; j < S; ++j) P[j] = 0.f;
  }
  if (p.x_sl == 1) {
    load_row(p.x, b * p.x_sb + c * p.x_sc, L, at, P + S);
  } else {
    for (int64_t l = 0; l < L; ++l)
      P[S + l] = load_as_float(p.x, b * p.x_sb + c * p.x_sc + l * p.x_sl, at);
  }
  for (int64_t j = 0; j < K; ++j) sc.w[j] = load_as_float(p.w, c * p.w_sc + j * p.w_sk, at);

  const float bias = p.bias != nullptr ? load_as_float(p.bias, c * p.bias_sc, at) : 0.f;
  for (int64_t l = 0; l < L; ++l) acc[l] = bias;
  for (int64_t j = 0; j < K; ++j) {
    const float wj = sc.w[j];
    const float* __restrict pj = P + j;
    for (int64_t l = 0; l < L; ++l) acc[l] += wj * pj[l];
  }
  activate(acc, L, p.silu);
  if (p.y_sl == 1) {
    store_row(p.y, b * p.y_sb + c * p.y_sc, L, at, acc);
  } else {
    for (int64_t l = 0; l < L; ++l)
      store_from_float(p.y, b * p.y_sb + c * p.y_sc + l * p.y_sl, at, acc[l]);
  }

  if (S > 0) store_row(p.present, b * p.pres_sb + c * p.pres_sc, S, p.present_dtype, P + L);
}

}  // namespace

ConvImpl conv_impl(Isa isa) {
#if defined(LINATTN_X86)
  if (isa == Isa::kAvx512Bf16) return conv_avx512bf16();
  if (isa == Isa::kAvx512) return conv_avx512();
  if (isa == Isa::kAvx2) return conv_avx2();
#endif
  (void)isa;
  return ConvImpl{};
}

namespace {

// How the (batch row, channel block) items of a call run: the kernel, and channels per item.
enum class ConvPath { kDecodeK4, kChannelsLast, kChannelsFirst };
struct ConvSplit {
  ConvPath path = ConvPath::kChannelsFirst;
  int64_t per_item = kChannelGroup;
  bool rows = false;  // channels first through the instruction-set row kernel
};

ConvSplit conv_split(const CausalConvParams& p, const ConvImpl& impl) {
  // Work items of one batch row x kDecodeBlock channels: each is one sequential run over the
  // row's input, output and state (24 KiB of state at 2048 channels).
  if (impl.decode_k4 != nullptr && conv_decode_k4_fits(p))
    return {ConvPath::kDecodeK4, kDecodeBlock, false};
  if (p.x_sc == 1 && p.y_sc == 1) return {ConvPath::kChannelsLast, kChannelBlock, false};
  return {ConvPath::kChannelsFirst, kChannelGroup,
          impl.row != nullptr && p.x_sl == 1 && p.y_sl == 1};
}

// Channels [c0, c0 + per_item) of batch row b.
inline void conv_item(const CausalConvParams& p, const ConvSplit& sp, const ConvImpl& impl,
                      int64_t b, int64_t c0) {
  const int64_t n = std::min(sp.per_item, p.C - c0);
  switch (sp.path) {
    case ConvPath::kDecodeK4:
      impl.decode_k4(p, b, b + 1, c0, n);
      return;
    case ConvPath::kChannelsLast: {
      if (impl.block != nullptr) {
        impl.block(p, b, c0, n);
        return;
      }
      thread_local ChannelsLastScratch sc;
      conv_channels_last(p, b, c0, n, sc);
      return;
    }
    case ConvPath::kChannelsFirst: {
      if (sp.rows) {
        for (int64_t c = c0; c < c0 + n; ++c) impl.row(p, b, c, c + 1 < c0 + n);
        return;
      }
      thread_local ChannelsFirstScratch sc;
      for (int64_t c = c0; c < c0 + n; ++c) conv_channels_first(p, b, c, sc);
      return;
    }
  }
}

const void* at(const void* base, int64_t elems, linattn_dtype t) {
  return static_cast<const char*>(base) + elems * static_cast<int64_t>(dtype_bytes(t));
}
void* at(void* base, int64_t elems, linattn_dtype t) {
  return static_cast<char*>(base) + elems * static_cast<int64_t>(dtype_bytes(t));
}

}  // namespace

Status causal_conv(const CausalConvParams& p, const Exec& e) {
  if (p.B == 0 || p.C == 0) return Status();
  const ConvImpl impl = conv_impl(active_isa());
  const ConvSplit sp = conv_split(p, impl);
  const int64_t blocks = (p.C + sp.per_item - 1) / sp.per_item;
  e.pool->parallel_for(p.B * blocks, [&](int64_t item, int) {
    const int64_t b = item / blocks;
    conv_item(p, sp, impl, b, (item % blocks) * sp.per_item);
  });
  return Status();
}

// One (row, channel block) item per block of every row, in one fork/join; each row runs as the
// dense call (1, C, len) on its own state rows, with the kernel the dense call would pick.
// Everything before the fork runs on the calling thread alone, so it is kept to a pass over the
// rows: no params copy per row, and decode batches (every row alike) map an item to its row by
// one division. Each item makes its row's params from p on the worker's stack.
Status causal_conv_rows(const CausalConvParams& p, const SequenceRow* rows, int64_t n,
                        const Exec& e) {
  if (n == 0 || p.C == 0) return Status();
  const ConvImpl impl = conv_impl(active_isa());
  auto row_params = [&](const SequenceRow& r) {
    CausalConvParams q = p;
    q.B = 1;
    q.L = r.len;
    q.x = at(p.x, r.b * p.x_sb + r.t0 * p.x_sl, p.act_dtype);
    q.y = at(p.y, r.b * p.y_sb + r.t0 * p.y_sl, p.act_dtype);
    q.past = r.past;
    q.present = r.present;
    q.in_place = r.in_place;
    return q;
  };
  // conv_split reads a row's length and whether it has a past, never its addresses, so rows
  // alike in those two share the split of the first row.
  const ConvSplit sp0 = conv_split(row_params(rows[0]), impl);
  const int64_t blocks0 = (p.C + sp0.per_item - 1) / sp0.per_item;
  auto same_split = [&](const ConvSplit& s) {
    return s.path == sp0.path && s.per_item == sp0.per_item && s.rows == sp0.rows;
  };
  struct RowItems {
    int64_t first_item;
    ConvSplit sp;
  };
  std::vector<RowItems> firsts;  // filled only once some row's split differs from sp0
  int64_t items = blocks0;
  for (int64_t r = 1; r < n; ++r) {
    const bool alike =
        rows[r].len == rows[0].len && (rows[r].past == nullptr) == (rows[0].past == nullptr);
    const ConvSplit sp = alike ? sp0 : conv_split(row_params(rows[r]), impl);
    if (firsts.empty()) {
      if (same_split(sp)) {
        items += blocks0;
        continue;
      }
      firsts.reserve(static_cast<size_t>(n));
      for (int64_t k = 0; k < r; ++k) firsts.push_back(RowItems{k * blocks0, sp0});
    }
    firsts.push_back(RowItems{items, sp});
    items += (p.C + sp.per_item - 1) / sp.per_item;
  }
  const bool uniform = firsts.empty();
  e.pool->parallel_for(items, [&](int64_t item, int) {
    if (uniform) {
      const int64_t r = item / blocks0;
      conv_item(row_params(rows[r]), sp0, impl, 0, (item - r * blocks0) * sp0.per_item);
      return;
    }
    // The row holding this item: the last one whose first item is not past it.
    const auto next = std::upper_bound(
        firsts.begin(), firsts.end(), item,
        [](int64_t i, const RowItems& x) { return i < x.first_item; });
    const RowItems& ri = *(next - 1);
    const SequenceRow& row = rows[(next - 1) - firsts.begin()];
    conv_item(row_params(row), ri.sp, impl, 0, (item - ri.first_item) * ri.sp.per_item);
  });
  return Status();
}

}  // namespace linattn::detail::cpu
