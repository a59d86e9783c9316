// CausalConvWithState serving kernels (docs/SERVING.md): packed sequences (cu_seqlens), state
// pools addressed by state_indices / read_state_indices with PAD, has_initial_state, and
// speculative windows stored per token. The math is that of src/core/serving.cpp: sequence n
// convolves its own tokens with a window that starts from its read state (or zeros) and never
// sees another sequence's tokens; the window after its last token goes to its written slot,
// or, when speculative, the window after its token t goes to slot state_indices[n, t].
//
// One token per row with 16-bit activations and pools on sm_90 takes the dense update's
// bulk-copy kernel in its serving form (causal_conv_update.cu). Otherwise two kernels, both
// with one thread owning some channels of one sequence and walking that sequence's tokens with
// the window in registers, so a thread reads its state before it writes any state (in-place
// pools and a read slot equal to a written one are safe):
// - conv_serving_vec_kernel: contiguous channels (channels-last, or one token per row), four
//   channels per thread moved as vectors, k = 2..4. With one token per batch row and 16-bit
//   activations a thread takes four rows and issues all their loads before any arithmetic, as
//   the dense update kernel does (causal_conv.cu); on the H100 (B = 256, C = 8192, k = 4,
//   bf16) it took 18.6 us through a shuffled pool, where the bulk-copy kernel takes 12.9 us.
// - conv_serving_seq_kernel: everything else (channels-first packed rows, odd channel counts,
//   k = 1 or k > 4): one block per (sequence, tile of 256 channels), one channel per thread.
// Every thread resolves its sequence (serving_params.hpp) before touching anything else;
// a sequence whose indices break a rule is skipped whole and one thread raises the flag.
#include <cstdint>
#include <string>

#include "core/serving_params.hpp"
#include "cuda/causal_conv_bulk.cuh"
#include "cuda/causal_conv_common.cuh"
#include "cuda/cuda_common.cuh"
#include "cuda/serving.hpp"
#include "cuda/serving_flag.cuh"

namespace linattn::detail::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxK = 64;   // as the dense runtime-width kernel
constexpr int kCh = 4;      // channels per thread in the vector kernel
constexpr int kSteps = 4;   // tokens whose input loads a thread issues together

// The pool (or rows) a sequence's initial state is read from, and the one its states go to
// (StatePools: causal_conv_bulk.cuh).
StatePools state_pools(const CausalConvServing& s) {
  const CausalConvParams& p = s.p;
  StatePools sp;
  sp.wr = p.present;
  sp.wr_dtype = p.present_dtype;
  sp.wr_sb = p.pres_sb;
  sp.wr_sc = p.pres_sc;
  if (p.past != nullptr) {
    sp.rd = p.past;
    sp.rd_dtype = p.past_dtype;
    sp.rd_sb = p.past_sb;
    sp.rd_sc = p.past_sc;
  } else if (s.ix.pool) {  // a pool without past_state is read in place
    sp.rd = p.present;
    sp.rd_dtype = p.present_dtype;
    sp.rd_sb = p.pres_sb;
    sp.rd_sc = p.pres_sc;
  }
  return sp;  // no pool and no past_state: resolve_sequence never asks for a read
}

// Vector forms the layout allows (16-byte aligned bases, strides that keep every 4-channel
// group aligned, state blocks of k-1 contiguous columns per channel in the activation dtype).
struct VecFlags {
  bool w_vec = false, bias_vec = false, rd_vec = false, wr_vec = false;
};

// ---- Vector kernel ---------------------------------------------------------------------------

// State block of 4 channels, st[ch * (k-1) + j], from row/slot `row` of a pool.
template <int KM, linattn_dtype AT>
__device__ __forceinline__ void load_state4(const void* base, linattn_dtype dt, int64_t sb, int64_t sc,
                                            bool vec, int64_t row, int64_t c, float* st) {
  if (vec) {
#pragma unroll
    for (int n = 0; n < KM; ++n) unpack_packed<AT>(ld_packed<AT>(base, row * sb + c * KM + 4 * n), st + 4 * n);
  } else {
#pragma unroll
    for (int ch = 0; ch < kCh; ++ch)
#pragma unroll
      for (int j = 0; j < KM; ++j) st[ch * KM + j] = ld_rt(base, row * sb + (c + ch) * sc + j, dt);
  }
}

template <int KM, linattn_dtype AT>
__device__ __forceinline__ void store_state4(void* base, linattn_dtype dt, int64_t sb, int64_t sc, bool vec,
                                             int64_t row, int64_t c, const float* st) {
  if (vec) {
    st_run<AT, kCh * KM>(base, row * sb + c * KM, st);
  } else {
#pragma unroll
    for (int ch = 0; ch < kCh; ++ch)
#pragma unroll
      for (int j = 0; j < KM; ++j) st_rt(base, row * sb + (c + ch) * sc + j, dt, st[ch * KM + j]);
  }
}

// One sequence, 4 channels, any number of tokens.
template <int KT, linattn_dtype AT>
__device__ __forceinline__ void vec_sequence(const CausalConvServing& s, const StatePools& sp,
                                             const VecFlags& vf, int64_t n, int64_t c, bool first_group) {
  constexpr int KM = KT - 1;
  const CausalConvParams& p = s.p;
  ResolvedSequence r;
  if (!resolve_sequence(s.ix, n, &r)) {
    if (first_group) raise_serving_error(s.ix.error_flag, n);
    return;
  }
  const int64_t xb = r.b * p.x_sb + r.t0 * p.x_sl + c, yb = r.b * p.y_sb + r.t0 * p.y_sl + c;
  if (r.pad) {
    const float zero[kCh] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t l = 0; l < r.len; ++l) st_run<AT, kCh>(p.y, yb + l * p.y_sl, zero);
    return;
  }
  ChannelWeights4<KT, AT> w;
  w.load(p, vf.w_vec, vf.bias_vec, c);
  float st[kCh * KM];  // the window, st[ch * (k-1) + m] = P at step t - (k-1) + m
  if (r.read < 0) {
#pragma unroll
    for (int e = 0; e < kCh * KM; ++e) st[e] = 0.f;
  } else {
    load_state4<KM, AT>(sp.rd, sp.rd_dtype, sp.rd_sb, sp.rd_sc, vf.rd_vec, r.read, c, st);
  }
  for (int64_t l = 0; l < r.len; l += kSteps) {
    float xs[kSteps][kCh];
#pragma unroll
    for (int u = 0; u < kSteps; ++u)
      if (l + u < r.len) ld_run<AT, kCh>(p.x, xb + (l + u) * p.x_sl, xs[u]);
#pragma unroll
    for (int u = 0; u < kSteps; ++u) {
      if (l + u >= r.len) break;
      float ys[kCh];
#pragma unroll
      for (int ch = 0; ch < kCh; ++ch) {
        float acc = fmaf(w.get(ch * KT + KM), xs[u][ch], w.bias[ch]);
#pragma unroll
        for (int m = 0; m < KM; ++m) acc = fmaf(w.get(ch * KT + m), st[ch * KM + m], acc);
        ys[ch] = p.silu ? silu(acc) : acc;
#pragma unroll
        for (int m = 0; m + 1 < KM; ++m) st[ch * KM + m] = st[ch * KM + m + 1];
        st[ch * KM + KM - 1] = xs[u][ch];
      }
      st_run<AT, kCh>(p.y, yb + (l + u) * p.y_sl, ys);
      if (s.ix.spec) {
        const int64_t slot = s.ix.state_indices.at(n, l + u);
        if (slot >= 0) store_state4<KM, AT>(sp.wr, sp.wr_dtype, sp.wr_sb, sp.wr_sc, vf.wr_vec, slot, c, st);
      }
    }
  }
  if (!s.ix.spec) store_state4<KM, AT>(sp.wr, sp.wr_dtype, sp.wr_sb, sp.wr_sc, vf.wr_vec, r.write, c, st);
}

// A thread owns 4 channels (group g) of NR consecutive sequences. NR > 1 only for calls with one
// token per batch row (not packed, L = 1): then the four rows are resolved first, their input
// and state loads all issued, kept packed, and only then used (the dense update kernel's
// scheme), since a resolved row's loads cannot be issued before its slot is known.
template <int KT, linattn_dtype AT, int NR>
__global__ void __launch_bounds__(kThreads, 4)
    conv_serving_vec_kernel(const CausalConvServing s, const StatePools sp, const VecFlags vf, uint32_t ngroups,
                            uint32_t total) {
  constexpr int KM = KT - 1;
  const uint32_t idx = blockIdx.x * kThreads + threadIdx.x;
  if (idx >= total) return;
  const uint32_t g = idx % ngroups;
  const int64_t c = static_cast<int64_t>(g) * kCh;
  const int64_t n0 = static_cast<int64_t>(idx / ngroups) * NR;
  if constexpr (NR == 1) {
    vec_sequence<KT, AT>(s, sp, vf, n0, c, g == 0);
  } else {
    using P4 = typename Packed4<AT>::T;
    const CausalConvParams& p = s.p;
    const int64_t N = s.ix.N;
    // wr[i]: slot the new window goes to; -1 = PAD (zero output), -2 = nothing to do.
    int64_t wr[NR], rd[NR];
    P4 xr[NR], sr[NR][KM];
#pragma unroll
    for (int i = 0; i < NR; ++i) {
      const int64_t n = n0 + i;
      wr[i] = -2;
      rd[i] = -1;
      if (n >= N) continue;
      ResolvedSequence r;
      if (!resolve_sequence(s.ix, n, &r)) {
        if (g == 0) raise_serving_error(s.ix.error_flag, n);
        continue;
      }
      if (r.pad) {
        wr[i] = -1;
        continue;
      }
      // Not PAD: a speculative row's first slot is a real one.
      wr[i] = s.ix.spec ? s.ix.state_indices.at(n, 0) : r.write;
      rd[i] = r.read;
      if constexpr (AT == LINATTN_FLOAT32) {
        xr[i] = __ldg(reinterpret_cast<const float4*>(static_cast<const float*>(p.x) + n * p.x_sb + c));
      } else {
        xr[i] = __ldg(reinterpret_cast<const uint2*>(static_cast<const uint16_t*>(p.x) + n * p.x_sb + c));
      }
      if (r.read >= 0 && vf.rd_vec) {
#pragma unroll
        for (int m = 0; m < KM; ++m) sr[i][m] = ld_packed<AT>(sp.rd, r.read * sp.rd_sb + c * KM + 4 * m);
      }
    }
    ChannelWeights4<KT, AT> w;
    w.load(p, vf.w_vec, vf.bias_vec, c);
#pragma unroll
    for (int i = 0; i < NR; ++i) {
      const int64_t n = n0 + i;
      if (wr[i] == -2) continue;
      if (wr[i] == -1) {
        const float zero[kCh] = {0.f, 0.f, 0.f, 0.f};
        st_run<AT, kCh>(p.y, n * p.y_sb + c, zero);
        continue;
      }
      float pst[kCh * KM], xv[kCh], ys[kCh];
      if (rd[i] < 0) {
#pragma unroll
        for (int e = 0; e < kCh * KM; ++e) pst[e] = 0.f;
      } else if (vf.rd_vec) {
#pragma unroll
        for (int m = 0; m < KM; ++m) unpack_packed<AT>(sr[i][m], pst + 4 * m);
      } else {
        load_state4<KM, AT>(sp.rd, sp.rd_dtype, sp.rd_sb, sp.rd_sc, false, rd[i], c, pst);
      }
      unpack_packed<AT>(xr[i], xv);
#pragma unroll
      for (int ch = 0; ch < kCh; ++ch) {
        float acc = fmaf(w.get(ch * KT + KM), xv[ch], w.bias[ch]);
#pragma unroll
        for (int m = 0; m < KM; ++m) acc = fmaf(w.get(ch * KT + m), pst[ch * KM + m], acc);
        ys[ch] = p.silu ? silu(acc) : acc;
      }
      st_run<AT, kCh>(p.y, n * p.y_sb + c, ys);
      // The new window: the old one shifted left by one, then this input.
      float pres[kCh * KM];
#pragma unroll
      for (int ch = 0; ch < kCh; ++ch) {
#pragma unroll
        for (int j = 0; j + 1 < KM; ++j) pres[ch * KM + j] = pst[ch * KM + j + 1];
        pres[ch * KM + KM - 1] = xv[ch];
      }
      store_state4<KM, AT>(sp.wr, sp.wr_dtype, sp.wr_sb, sp.wr_sc, vf.wr_vec, wr[i], c, pres);
    }
  }
}

// ---- Generic kernel --------------------------------------------------------------------------

// One block per (sequence, tile of kThreads channels); KT = kernel width, 0 = runtime up to kMaxK.
template <int KT, linattn_dtype AT>
__global__ void __launch_bounds__(kThreads)
    conv_serving_seq_kernel(const CausalConvServing s, const StatePools sp, uint32_t ntiles) {
  constexpr int KW = KT > 0 ? KT : kMaxK;
  const CausalConvParams& p = s.p;
  const int64_t n = blockIdx.x / ntiles;
  const int64_t c = static_cast<int64_t>(blockIdx.x % ntiles) * kThreads + threadIdx.x;
  ResolvedSequence r;
  if (!resolve_sequence(s.ix, n, &r)) {
    if (c == 0) raise_serving_error(s.ix.error_flag, n);
    return;
  }
  if (c >= p.C) return;
  const int64_t xb = r.b * p.x_sb + c * p.x_sc + r.t0 * p.x_sl;
  const int64_t yb = r.b * p.y_sb + c * p.y_sc + r.t0 * p.y_sl;
  if (r.pad) {
    for (int64_t l = 0; l < r.len; ++l) st<AT>(p.y, yb + l * p.y_sl, 0.f);
    return;
  }
  const int k = KT > 0 ? KT : p.K;
  float w[KW];
#pragma unroll
  for (int j = 0; j < KW; ++j) w[j] = j < k ? ld<AT>(p.w, c * p.w_sc + j * p.w_sk) : 0.f;
  const float bias = p.bias != nullptr ? ld<AT>(p.bias, c * p.bias_sc) : 0.f;

  // win[m] = P at step t - (k-1) + m.
  float win[KW > 1 ? KW - 1 : 1];
#pragma unroll
  for (int m = 0; m < KW - 1; ++m) {
    if (m >= k - 1) break;
    win[m] = r.read < 0 ? 0.f : ld_rt(sp.rd, r.read * sp.rd_sb + c * sp.rd_sc + m, sp.rd_dtype);
  }
  auto store_window = [&](int64_t slot) {
#pragma unroll
    for (int m = 0; m < KW - 1; ++m) {
      if (m >= k - 1) break;
      st_rt(sp.wr, slot * sp.wr_sb + c * sp.wr_sc + m, sp.wr_dtype, win[m]);
    }
  };
  for (int64_t l = 0; l < r.len; l += 2 * kSteps) {
    float xs[2 * kSteps];
#pragma unroll
    for (int u = 0; u < 2 * kSteps; ++u)
      if (l + u < r.len) xs[u] = ld<AT>(p.x, xb + (l + u) * p.x_sl);
#pragma unroll
    for (int u = 0; u < 2 * kSteps; ++u) {
      if (l + u >= r.len) break;
      float acc = fmaf(w[k - 1], xs[u], bias);
#pragma unroll
      for (int m = 0; m < KW - 1; ++m) {
        if (m >= k - 1) break;
        acc = fmaf(w[m], win[m], acc);
      }
#pragma unroll
      for (int m = 0; m + 1 < KW - 1; ++m) {
        if (m + 1 >= k - 1) break;
        win[m] = win[m + 1];
      }
      if (k > 1) win[k - 2] = xs[u];
      st<AT>(p.y, yb + (l + u) * p.y_sl, p.silu ? silu(acc) : acc);
      if (s.ix.spec) {
        const int64_t slot = s.ix.state_indices.at(n, l + u);
        if (slot >= 0) store_window(slot);
      }
    }
  }
  if (!s.ix.spec) store_window(r.write);
}

// ---- Launch ----------------------------------------------------------------------------------

bool vec_ok(const CausalConvServing& s, int esize) {
  const CausalConvParams& p = s.p;
  if (p.K < 2 || p.K > 4 || p.C < kCh || p.C % kCh != 0 || p.x_sc != 1 || p.y_sc != 1) return false;
  const bool one_token = s.ix.T <= 1;
  return p.x_sb % kCh == 0 && p.y_sb % kCh == 0 &&
         (one_token || (p.x_sl % kCh == 0 && p.y_sl % kCh == 0)) && aligned16(p.x, 0, esize) &&
         aligned16(p.y, 0, esize);
}

VecFlags vec_flags(const CausalConvServing& s, const StatePools& sp, int esize) {
  const CausalConvParams& p = s.p;
  const int64_t km = p.K - 1;
  // State vectors: 4 channels x (k-1) columns contiguous, every group 16-byte aligned in every
  // slot (as the dense kernels require: slot stride a multiple of 8 elements).
  auto state_vec = [&](const void* base, linattn_dtype dt, int64_t sb, int64_t sc) {
    return base != nullptr && dt == p.act_dtype && sc == km && sb % 8 == 0 && aligned16(base, 0, esize);
  };
  VecFlags vf;
  vf.w_vec = p.w_sc == p.K && p.w_sk == 1 && aligned16(p.w, 0, esize);
  vf.bias_vec = p.bias_sc == 1 && aligned16(p.bias, 0, esize);
  vf.rd_vec = state_vec(sp.rd, sp.rd_dtype, sp.rd_sb, sp.rd_sc);
  vf.wr_vec = state_vec(sp.wr, sp.wr_dtype, sp.wr_sb, sp.wr_sc);
  return vf;
}

template <int KT, linattn_dtype AT, int NR>
void launch_vec(const CausalConvServing& s, const StatePools& sp, const VecFlags& vf, uint32_t ngroups,
                uint32_t total, cudaStream_t st) {
  const uint32_t blocks = (total + kThreads - 1) / kThreads;
  conv_serving_vec_kernel<KT, AT, NR><<<blocks, kThreads, 0, st>>>(s, sp, vf, ngroups, total);
}

template <int KT, linattn_dtype AT>
void launch_vec_rows(const CausalConvServing& s, const StatePools& sp, const VecFlags& vf, int64_t nr,
                     uint32_t ngroups, uint32_t total, cudaStream_t st) {
  if (nr == 4) launch_vec<KT, AT, 4>(s, sp, vf, ngroups, total, st);
  else launch_vec<KT, AT, 1>(s, sp, vf, ngroups, total, st);
}

template <int KT, linattn_dtype AT>
void launch_seq(const CausalConvServing& s, const StatePools& sp, uint32_t ntiles, uint32_t blocks,
                cudaStream_t st) {
  conv_serving_seq_kernel<KT, AT><<<blocks, kThreads, 0, st>>>(s, sp, ntiles);
}

template <linattn_dtype AT>
Status launch_for_act(const CausalConvServing& s, cudaStream_t st) {
  const CausalConvParams& p = s.p;
  if (p.K > kMaxK) {
    return unsupported("CausalConvWithState (cuda): serving calls support kernel widths up to " +
                       std::to_string(kMaxK) + "; k = " + std::to_string(p.K));
  }
  const int64_t N = s.ix.N;
  if (N == 0) return Status::ok_status();
  constexpr int esize = AT == LINATTN_FLOAT32 ? 4 : 2;
  const StatePools sp = state_pools(s);
  if constexpr (AT != LINATTN_FLOAT32) {
    if (conv_update_bulk_serving_ok(s, sp)) return conv_update_bulk_serving(s, sp, st);
  }
  if (vec_ok(s, esize)) {
    // Four rows per thread for 16-bit decode, as the dense update kernel.
    const int64_t nr = (!s.ix.packed && s.ix.T == 1 && AT != LINATTN_FLOAT32) ? 4 : 1;
    const int64_t ngroups = p.C / kCh, total = ngroups * ((N + nr - 1) / nr);
    if (total < 0xffff0000ll) {
      const VecFlags vf = vec_flags(s, sp, esize);
      const auto g = static_cast<uint32_t>(ngroups), t = static_cast<uint32_t>(total);
      with_vector_width(p.K, [&](auto k) {
        launch_vec_rows<decltype(k)::value, AT>(s, sp, vf, nr, g, t, st);
      });
      return launch_status("CausalConvWithState (cuda): serving kernel launch");
    }
  }
  // At least one tile, so that a call with C = 0 still resolves (and flags) its sequences.
  const int64_t ntiles = p.C > 0 ? (p.C + kThreads - 1) / kThreads : 1;
  if (N * ntiles > 0x7fffffffll) {
    return unsupported("CausalConvWithState (cuda): serving call with N * ceil(C / 256) = " +
                       std::to_string(N * ntiles) + " blocks exceeds one launch");
  }
  const auto nt = static_cast<uint32_t>(ntiles), blocks = static_cast<uint32_t>(N * ntiles);
  with_width(p.K, [&](auto k) {
    launch_seq<decltype(k)::value, AT>(s, sp, nt, blocks, st);
  });
  return launch_status("CausalConvWithState (cuda): serving kernel launch");
}

}  // namespace

Status causal_conv_serving_kernels(const CausalConvServing& s, const Exec& e) {
  const auto st = static_cast<cudaStream_t>(e.stream);
  switch (s.p.act_dtype) {
    case LINATTN_FLOAT32: return launch_for_act<LINATTN_FLOAT32>(s, st);
    case LINATTN_FLOAT16: return launch_for_act<LINATTN_FLOAT16>(s, st);
    case LINATTN_BFLOAT16: return launch_for_act<LINATTN_BFLOAT16>(s, st);
    default:
      return unsupported("CausalConvWithState (cuda): activation dtype " +
                         std::to_string(static_cast<int>(s.p.act_dtype)) +
                         " is not float32, float16 or bfloat16");
  }
}

}  // namespace linattn::detail::cuda
