// The short sequential step between the two scan passes of a segmented window
// (chunked_layout.cuh): per (sequence, kv head), the true state at the start of segment s + 1 is
// M_s S_s + L_s, where S_s is the true start of segment s, M_s its transition product and L_s
// its end state from zero. Columns of the state are independent, so one CTA takes kCols of them
// and walks the segments in order. The products run on the tensor cores (mma.sync m16n8k16)
// with M and S as hi + lo bfloat16 parts (three products, about 16 significant bits, float32
// accumulation; bfloat16 keeps float32's range), L added in float32 as the accumulators' start.
// Each warp finds 16 rows of the CTA's d_k x kCols slice; M_{s+1} is copied into shared memory
// (cp.async, two buffers) while M_s is used, so a segment costs its products, not a memory
// latency.
// H100, 2/8 heads 1x65536 (16 segments): the call took 0.558 / 0.561 ms with it against 0.580 /
// 0.587 with the former float32 form on CUDA cores (58 us under Nsight Compute: a
// thread per row loading its row of M_s from L2 each segment, 16 CTAs re-reading each M_s).
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

constexpr int kCols = 16;     // state columns per CTA (two n tiles of 8)
constexpr int kSLd = kCols + 8;  // S tile row stride (bf16): ldmatrix rows on distinct banks

// M rows in shared memory: DK + 8 floats, so that the eight rows of an A fragment load fall on
// distinct bank groups.
template <int DK>
constexpr int m_ld() {
  return DK + 8;
}
template <int DK>
constexpr size_t combine_smem_bytes() {
  return 2 * size_t{DK} * m_ld<DK>() * 4 + 2 * size_t{DK} * kSLd * 2;
}

// M_s (row-major DK x DK float32) into a shared buffer of rows m_ld<DK>().
template <int DK>
__device__ __forceinline__ void copy_m(float* dst, const float* src) {
  constexpr int kPieces = DK * DK / 4, kThreadsC = DK / 16 * 32;
#pragma unroll
  for (int k = 0; k < kPieces / kThreadsC; ++k) {
    const int i = threadIdx.x + k * kThreadsC, r = i / (DK / 4), c = (i % (DK / 4)) * 4;
    cp_async16(dst + r * m_ld<DK>() + c, src + r * DK + c);
  }
}

// The S slice as hi and lo bfloat16 B operands ([k][n], rows of kSLd) from the accumulators.
__device__ __forceinline__ void store_s(uint16_t* sh, uint16_t* sl, const float (&acc)[2][4], int row0) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int j = 0; j < 2; ++j) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const float x0 = acc[j][2 * hh], x1 = acc[j][2 * hh + 1];
      const uint32_t hi = pack2<true>(x0, x1);
      const int o = (row0 + g + 8 * hh) * kSLd + 8 * j + 2 * t4;
      *reinterpret_cast<uint32_t*>(sh + o) = hi;
      *reinterpret_cast<uint32_t*>(sl + o) = pack2_lo<true>(x0, x1, hi);
    }
  }
}

template <int DK>
__global__ void __launch_bounds__(DK / 16 * 32) chunked_combine_kernel(const KernelArgs args) {
  constexpr int MLD = m_ld<DK>();
  const int dv = args.p.dv;
  const int groups = dv / kCols;
  const int64_t bh = blockIdx.x / groups;
  const int col0 = (blockIdx.x % groups) * kCols;
  const int w = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int row0 = 16 * w;

  extern __shared__ __align__(16) unsigned char smem[];
  float* mbuf = reinterpret_cast<float*>(smem);  // [2][DK][MLD]
  uint16_t* sh = reinterpret_cast<uint16_t*>(mbuf + 2 * DK * MLD);  // [DK][kSLd]
  uint16_t* sl = sh + DK * kSLd;

  float* st = args.seg_state + bh * args.nseg * DK * dv;
  const float* ms = args.seg_m + bh * args.nseg * DK * DK;
  const int last = args.nseg - 2;  // segments s = 1 .. last are combined

  // M_1 and M_2 on their way (a group each, empty where there is none).
  copy_m<DK>(mbuf, ms + int64_t{DK} * DK);
  cp_async_commit();
  if (last >= 2) copy_m<DK>(mbuf + DK * MLD, ms + 2 * int64_t{DK} * DK);
  cp_async_commit();

  // The accumulator positions of this lane: rows row0 + g + 8 hh, columns col0 + 8 j + 2 t4.
  auto at = [&](int slot, int j, int hh) {
    return st + (int64_t{slot} * DK + row0 + g + 8 * hh) * dv + col0 + 8 * j + 2 * t4;
  };
  // Slot 1 already holds the true start of segment 1 (segment 0 ran from the true state).
  float acc[2][4];
#pragma unroll
  for (int j = 0; j < 2; ++j) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const float2 x = *reinterpret_cast<const float2*>(at(1, j, hh));
      acc[j][2 * hh] = x.x;
      acc[j][2 * hh + 1] = x.y;
    }
  }
  store_s(sh, sl, acc, row0);
  // L_1 (slot 2) for the first segment.
  float2 lnext[2][2];
#pragma unroll
  for (int j = 0; j < 2; ++j) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) lnext[j][hh] = *reinterpret_cast<const float2*>(at(2, j, hh));
  }

  for (int s = 1; s <= last; ++s) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        acc[j][2 * hh] = lnext[j][hh].x;
        acc[j][2 * hh + 1] = lnext[j][hh].y;
      }
    }
    if (s < last) {  // L_{s+1} while this segment's products run
#pragma unroll
      for (int j = 0; j < 2; ++j) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) lnext[j][hh] = *reinterpret_cast<const float2*>(at(s + 2, j, hh));
      }
    }
    cp_async_wait<1>();  // M_s has landed (M_{s+1} may not have)
    __syncthreads();    // ... for every thread, and S_s is in sh / sl
    const float* m = mbuf + ((s - 1) & 1) * DK * MLD + (row0 + g) * MLD + 2 * t4;
#pragma unroll
    for (int k0 = 0; k0 < DK; k0 += 16) {
      // A fragments of M (rows g, g + 8; columns 2 t4, 2 t4 + 8 of this k step) split into hi + lo.
      uint32_t ah[4], al[4];
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float2 x = *reinterpret_cast<const float2*>(m + (q & 1) * 8 * MLD + k0 + (q >> 1) * 8);
        ah[q] = pack2<true>(x.x, x.y);
        al[q] = pack2_lo<true>(x.x, x.y, ah[q]);
      }
      uint32_t bh[4], bl[4];
      const int mi = lane >> 3, r8 = lane & 7;
      const int bo = (k0 + (mi & 1) * 8 + r8) * kSLd + (mi >> 1) * 8;
      ldsm_x4_t(bh, sh + bo);
      ldsm_x4_t(bl, sl + bo);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        mma16816<true>(acc[j], ah, bh[2 * j], bh[2 * j + 1]);
        mma16816<true>(acc[j], ah, bl[2 * j], bl[2 * j + 1]);
        mma16816<true>(acc[j], al, bh[2 * j], bh[2 * j + 1]);
      }
    }
    __syncthreads();  // every warp is done with M_s's buffer and with S_s
    if (s + 2 <= last) copy_m<DK>(mbuf + ((s - 1) & 1) * DK * MLD, ms + int64_t{s + 2} * DK * DK);
    cp_async_commit();
    store_s(sh, sl, acc, row0);
#pragma unroll
    for (int j = 0; j < 2; ++j) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        *reinterpret_cast<float2*>(at(s + 1, j, hh)) = make_float2(acc[j][2 * hh], acc[j][2 * hh + 1]);
      }
    }
  }
}

template <int DK>
Status launch_dk(const KernelArgs& a, cudaStream_t stream) {
  auto kernel = chunked_combine_kernel<DK>;
  constexpr size_t bytes = combine_smem_bytes<DK>();
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err == cudaSuccess) {
    const auto blocks = static_cast<unsigned>(a.p.B * a.p.Hkv * (a.p.dv / kCols));
    kernel<<<blocks, DK / 16 * 32, bytes, stream>>>(a);
    err = cudaGetLastError();
  }
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (combine): ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

}  // namespace

Status launch_combine(const KernelArgs& a, cudaStream_t stream) {
  if (a.nseg <= 2 || a.p.B == 0) return Status::ok_status();  // slot 1 is already exact
  return a.p.dk == 128 ? launch_dk<128>(a, stream) : launch_dk<64>(a, stream);
}

}  // namespace linattn::detail::cuda::chunked
