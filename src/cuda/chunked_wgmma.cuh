// Warpgroup-level products of the chunked scan: a warpgroup (4 warps, 128 threads) computes a
// 64 x 64 tile D (+)= A B with A (64 x K) and B (K x 64) in shared memory (or A in registers).
// On sm_90a this is wgmma.mma_async m64n64k16 reading the operands through matrix descriptors; elsewhere the
// same tile on mma.sync, warp w & 3 taking rows 16 (w & 3) .. + 15. Either way the result lands
// in the same registers: acc[j][e] is row 16 (w & 3) + lane / 4 + 8 (e / 2), column
// 8 j + 2 (lane % 4) + e % 2 (the layout of warp_gemm in chunked_mma.cuh).
//
// Tiles of 16-bit elements come in two layouts the tensor cores read (Tile):
//  - without swizzle: 8 x 8 core matrices of 128 contiguous bytes (row by row), rs and cs the
//    element strides between neighbouring cores down the rows and along the columns.
//    "Interleaved" tiles put the cores of a core row next to each other ({C / 8 * 64, 64} for
//    C columns). ldmatrix reads a core with one 128-byte row set, and 32-bit stores of a
//    fragment row pair fill one core, both without bank conflicts.
//  - 128-byte swizzle (sw): blocks of 64 columns cs elements apart, each on a 1024-byte
//    boundary, rows of 128 bytes (rs = 64); in each 1024-byte atom of eight rows the 16-byte
//    piece j of row r sits at piece j ^ (r % 8). cp.async fills it at full speed from whole
//    rows (measured on H100: 4 shared wavefronts and 16 L2 sectors per warp's copy of
//    512 bytes; 32 and 32 into the layout without swizzle, at a third of the throughput).
// il() gives the logical offset, without the XOR: the tensor cores apply it themselves (the
// descriptor's swizzle mode), other accesses through swz().
// Either serves as A with K along its columns (K-major: A = tile) or along its rows (A =
// tile^T, MN-major), and as B with N along its columns (N-major) or its rows (K-major, B^T
// stored).
#pragma once

#include <cstdint>

#include "cuda/chunked_mma.cuh"

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define LINATTN_WGMMA 1
#endif

namespace linattn::detail::cuda::chunked {

struct Tile {
  int rs, cs;
  bool sw;
};
// The interleaved tile with cpr cores per core row (C / 8).
__host__ __device__ __forceinline__ constexpr Tile interleaved(int cpr) { return Tile{cpr * 64, 64, false}; }
// The swizzled tile of `rows` rows.
__host__ __device__ __forceinline__ constexpr Tile swizzled(int rows) { return Tile{64, rows * 64, true}; }

// Element offset of (r, c) in a tile of layout t (logical: before the swizzle).
__host__ __device__ __forceinline__ constexpr int il(int r, int c, Tile t) {
  return t.sw ? (c >> 6) * t.cs + r * t.rs + (c & 63) : (r >> 3) * t.rs + (c >> 3) * t.cs + (r & 7) * 8 + (c & 7);
}
// The 128-byte swizzle of an element offset from a 1024-byte boundary, and of a pointer.
__host__ __device__ __forceinline__ constexpr int swz_off(int off) { return off ^ ((off >> 3) & 0x38); }
template <class T>
__device__ __forceinline__ T* swz(T* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return reinterpret_cast<T*>(a ^ ((a >> 3) & 0x70));
}
// Where element offset `off` of a tile of layout t at p lies.
template <class T>
__device__ __forceinline__ T* at(T* p, int off, Tile t) {
  return t.sw ? swz(p + off) : p + off;
}

// The operand forms of wg_gemm.
enum class Operand {
  kRowsK,  // A = tile (rows M = 64, columns K)
  kColsK,  // A = tile^T (tile rows K, columns M)
};

#if defined(LINATTN_WGMMA)
// Shared-memory matrix descriptor of an operand of a tile of layout t starting at p, K along
// the tile's columns (k_major) or rows. Without swizzle LBO is the byte stride between cores
// along K, SBO along M or N. With the 128-byte swizzle SBO is the stride between groups of
// eight rows (1024 bytes), and LBO, for MN-major operands, between blocks of 64 columns (M or N
// is 64 here: unused); K-major operands take K within a row.
__device__ __forceinline__ uint64_t smem_desc(const void* p, Tile t, bool k_major) {
  const uint32_t lbo = t.sw ? (k_major ? 16u : 2u * t.cs) : 2u * (k_major ? t.cs : t.rs);
  const uint32_t sbo = t.sw ? 16u * t.rs : 2u * (k_major ? t.rs : t.cs);
  return static_cast<uint64_t>((smem_addr(p) & 0x3FFFFu) >> 4) |
         (static_cast<uint64_t>((lbo & 0x3FFFFu) >> 4) << 16) |
         (static_cast<uint64_t>((sbo & 0x3FFFFu) >> 4) << 32) | (t.sw ? uint64_t{1} << 62 : 0);
}

// The descriptor of an operand starting off 16-bit elements (a multiple of 8) after the one d
// describes: the start address field counts 16-byte units and no shared-memory address carries
// out of it, so the add is the whole update (ptxas makes it one or two uniform instructions,
// where a descriptor formed from its pointer took about five).
__device__ __forceinline__ uint64_t desc_add(uint64_t d, int off) { return d + static_cast<uint64_t>(off >> 3); }

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }

// Keeps the compiler from moving accumulator reads or writes across wgmma fences and waits.
template <int NT>
__device__ __forceinline__ void wg_pin(float (&acc)[NT][4]) {
#pragma unroll
  for (int j = 0; j < NT; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(acc[j][e])::"memory");
  }
}

#define LINATTN_D64                                                                                \
  "+f"(d[0][0]), "+f"(d[0][1]), "+f"(d[0][2]), "+f"(d[0][3]), "+f"(d[1][0]), "+f"(d[1][1]),           \
      "+f"(d[1][2]), "+f"(d[1][3]), "+f"(d[2][0]), "+f"(d[2][1]), "+f"(d[2][2]), "+f"(d[2][3]),       \
      "+f"(d[3][0]), "+f"(d[3][1]), "+f"(d[3][2]), "+f"(d[3][3]), "+f"(d[4][0]), "+f"(d[4][1]),       \
      "+f"(d[4][2]), "+f"(d[4][3]), "+f"(d[5][0]), "+f"(d[5][1]), "+f"(d[5][2]), "+f"(d[5][3]),       \
      "+f"(d[6][0]), "+f"(d[6][1]), "+f"(d[6][2]), "+f"(d[6][3]), "+f"(d[7][0]), "+f"(d[7][1]),       \
      "+f"(d[7][2]), "+f"(d[7][3])
#define LINATTN_R64                                                                                \
  "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26," \
  "%27,%28,%29,%30,%31"

// d (+)= A B, m64n64k16, f32 accumulators, both operands through descriptors; TA: A is
// MN-major (else K-major); TB: B is N-major (else K-major).
template <bool BF16, int TA, int TB>
__device__ __forceinline__ void wgmma_ss(float (&d)[8][4], uint64_t da, uint64_t db, int accumulate) {
#define LINATTN_WGMMA_ASM(TYPE)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                      \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {" LINATTN_R64     \
               "}, %32, %33, p, 1, 1, %35, %36;\n}\n"                                            \
               : LINATTN_D64                                                                     \
               : "l"(da), "l"(db), "r"(accumulate), "n"(TA), "n"(TB))
  if constexpr (BF16) {
    LINATTN_WGMMA_ASM("bf16");
  } else {
    LINATTN_WGMMA_ASM("f16");
  }
#undef LINATTN_WGMMA_ASM
}

// d (+)= A B, m64n64k16, A from registers (the mma.sync A fragment of the warp's 16 rows), B
// through its descriptor: TB N-major, else K-major.
template <bool BF16, int TB>
__device__ __forceinline__ void wgmma_rs(float (&d)[8][4], const uint32_t (&a)[4], uint64_t db, int accumulate) {
#define LINATTN_WGMMA_ASM(TYPE)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                      \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " {" LINATTN_R64     \
               "}, {%32,%33,%34,%35}, %36, p, 1, 1, %38;\n}\n"                                   \
               : LINATTN_D64                                                                     \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate), "n"(TB))
  if constexpr (BF16) {
    LINATTN_WGMMA_ASM("bf16");
  } else {
    LINATTN_WGMMA_ASM("f16");
  }
#undef LINATTN_WGMMA_ASM
}
#undef LINATTN_D64
#undef LINATTN_R64
#endif

#if !defined(LINATTN_WGMMA)
// The mma.sync form: acc (the warp's 16 rows x 64) += a (A fragment, k step k0) times rows
// k0 .. k0 + 15 of B (N-major, or B^T stored when B_T).
template <bool BF16, bool B_T>
__device__ __forceinline__ void mma_k_step(float (&acc)[8][4], const uint32_t (&a)[4], const uint16_t* B, Tile tb,
                                           int k0) {
  const int lane = threadIdx.x & 31, mi = lane >> 3, r8 = lane & 7;
#pragma unroll
  for (int p = 0; p < 4; ++p) {
    uint32_t b[4];
    if constexpr (B_T) {
      // B^T rows n: matrices n +0/+8 (mi >> 1), k +0/+8 (mi & 1).
      ldsm_x4(b, at(B, il(16 * p + (mi >> 1) * 8 + r8, k0 + (mi & 1) * 8, tb), tb));
    } else {
      ldsm_x4_t(b, at(B, il(k0 + (mi & 1) * 8 + r8, 16 * p + (mi >> 1) * 8, tb), tb));
    }
    mma16816<BF16>(acc[2 * p], a, b[0], b[1]);
    mma16816<BF16>(acc[2 * p + 1], a, b[2], b[3]);
  }
}
#endif

// Issues acc (+)= A B for the calling warpgroup (all 128 threads call it), a 64 x 64 tile: A
// from a tile of layout ta in form FORM (starting at the core of row and column 0 of this
// product), B from a tile of layout tb with rows K and columns N (N-major) or, when B_T, with
// rows N and columns K (K-major, B^T stored). K is a multiple of 16. On sm_90a the products
// are only issued: wg_issue_done() waits for them. `accumulate` false: acc = A B.
template <bool BF16, Operand FORM, bool B_T = false>
__device__ __forceinline__ void wg_gemm(float (&acc)[8][4], const uint16_t* A, Tile ta, const uint16_t* B, Tile tb,
                                        int K, bool accumulate) {
#if defined(LINATTN_WGMMA)
  constexpr bool kAK = FORM == Operand::kRowsK;
  int acc_flag = accumulate ? 1 : 0;
  const uint64_t da = smem_desc(A, ta, kAK), db = smem_desc(B, tb, B_T);
#pragma unroll
  for (int k0 = 0; k0 < K; k0 += 16) {
    wgmma_ss<BF16, FORM == Operand::kColsK ? 1 : 0, B_T ? 0 : 1>(
        acc, desc_add(da, kAK ? il(0, k0, ta) : il(k0, 0, ta)), desc_add(db, B_T ? il(0, k0, tb) : il(k0, 0, tb)),
        acc_flag);
    acc_flag = 1;
  }
#else
  if (!accumulate) zero_acc(acc);
  const int lane = threadIdx.x & 31, row0 = 16 * ((threadIdx.x >> 5) & 3);
  const int mi = lane >> 3, r8 = lane & 7;
  for (int k0 = 0; k0 < K; k0 += 16) {
    uint32_t a[4];
    if constexpr (FORM == Operand::kRowsK) {
      // Matrices: rows +0/+8 (mi & 1), k +0/+8 (mi >> 1).
      ldsm_x4(a, at(A, il(row0 + (mi & 1) * 8 + r8, k0 + (mi >> 1) * 8, ta), ta));
    } else {
      // A^T stored as tile rows k: matrices rows m +0/+8 (mi & 1), k +0/+8 (mi >> 1), transposed.
      ldsm_x4_t(a, at(A, il(k0 + (mi >> 1) * 8 + r8, row0 + (mi & 1) * 8, ta), ta));
    }
    mma_k_step<BF16, B_T>(acc, a, B, tb, k0);
  }
#endif
}

// The shared-memory B operand of a run of wg_gemm_ra products (rows K x columns N, or when B_T
// rows N x columns K): the tile's start and, on sm_90a, its descriptor, which each product
// advances by its element offset instead of forming its own.
template <bool B_T = false>
struct BTile {
  const uint16_t* p;
  Tile t;
  uint64_t d = 0;
  __device__ __forceinline__ BTile(const uint16_t* tile, Tile layout) : p(tile), t(layout) {
#if defined(LINATTN_WGMMA)
    d = smem_desc(tile, layout, B_T);
#endif
  }
};

// acc (+)= A B with A given as the warp's mma.sync A fragment (rows 16 (w & 3) .., k 0..15) and
// B one k step of a tile of layout tb: rows 16 x columns 64 (N-major),
// or when B_T rows 64 x columns 16 (K-major, B^T stored): the k step at element offset off of b.
template <bool BF16, bool B_T>
__device__ __forceinline__ void wg_gemm_ra(float (&acc)[8][4], const uint32_t (&a)[4], const BTile<B_T>& b, int off,
                                           bool accumulate = true) {
#if defined(LINATTN_WGMMA)
  wgmma_rs<BF16, B_T ? 0 : 1>(acc, a, desc_add(b.d, off), accumulate ? 1 : 0);
#else
  if (!accumulate) zero_acc(acc);
  mma_k_step<BF16, B_T>(acc, a, b.p + off, b.t, 0);
#endif
}
// The same with B given by a pointer to the step's first core.
template <bool BF16, bool B_T = false>
__device__ __forceinline__ void wg_gemm_ra(float (&acc)[8][4], const uint32_t (&a)[4], const uint16_t* B, Tile tb,
                                           bool accumulate = true) {
  wg_gemm_ra<BF16>(acc, a, BTile<B_T>(B, tb), 0, accumulate);
}

// A fragments and accumulators: register q of the A fragment of k step kk holds columns
// 16 kk + 8 (q >> 1) + 2 (lane % 4) and the next of row 16 (w & 3) + lane / 4 + 8 (q & 1), which
// is pair (2 kk + (q >> 1), q & 1) of the accumulator layout above (acc[j][2 h], acc[j][2 h + 1]).
// acc_frag rounds k step kk of float32 accumulators to 16 bits; acc_frag_lo gives the rounding
// residuals of hi = acc_frag(...), so that hi + lo carries about twice the bits; frag_elem reads
// accumulator element (j, e) back from A fragments (k steps 0 .. 3).
template <bool BF16, int NT>
__device__ __forceinline__ void acc_frag(const float (&acc)[NT][4], int kk, uint32_t (&hi)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) hi[q] = pack2<BF16>(acc[2 * kk + (q >> 1)][2 * (q & 1)], acc[2 * kk + (q >> 1)][2 * (q & 1) + 1]);
}
template <bool BF16, int NT>
__device__ __forceinline__ void acc_frag_lo(const float (&acc)[NT][4], int kk, const uint32_t (&hi)[4],
                                            uint32_t (&lo)[4]) {
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    lo[q] = pack2_lo<BF16>(acc[2 * kk + (q >> 1)][2 * (q & 1)], acc[2 * kk + (q >> 1)][2 * (q & 1) + 1], hi[q]);
  }
}
template <bool BF16>
__device__ __forceinline__ float frag_elem(const uint32_t (&f)[4][4], int j, int e) {
  const uint32_t v = f[j >> 1][2 * (j & 1) + (e >> 1)];
  return half_as_float<BF16>(v, e & 1);
}

// Element offset, in a tile of layout t, of the row this lane addresses when a warp's four
// 8 x 8 fragments of k step 0 (rows 16 (w & 3) .. + 15 of a warpgroup's 64-row product,
// columns 0 .. 15) are read or written transposed: fragment i (register i of an A fragment) is
// tile rows 8 (i >> 1) .. + 7, columns 16 (w & 3) + 8 (i & 1) .. + 7; k step kk adds
// il(16 kk, 0, t). In a swizzled tile the offset is logical (swz_off places it) and the k steps
// move whole atoms.
__device__ __forceinline__ int frag_t_offset(Tile t) {
  const int lane = threadIdx.x & 31, i = lane >> 3;
  return il(8 * (i >> 1) + (lane & 7), 16 * ((threadIdx.x >> 5) & 3) + 8 * (i & 1), t);
}

// Stores an A fragment transposed (stmatrix .trans): register i holds rows lane / 4 of
// fragment i, columns 2 (lane % 4) and the next, which land in tile row 2 (lane % 4) (+1),
// column lane / 4 of the fragment's core; p = tile + frag_t_offset(t) + the k step's offset.
__device__ __forceinline__ void stsm_x4_t(const uint32_t (&r)[4], uint16_t* p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(smem_addr(p)),
               "r"(r[0]), "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
#else
  // Lanes 8 i + k name row k of fragment i: fetch the two rows this lane's values go to.
  const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const uint32_t a = smem_addr(p);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      const uint32_t row = __shfl_sync(0xffffffffu, a, 8 * i + 2 * t4 + e);
      const uint16_t v = static_cast<uint16_t>(e ? r[i] >> 16 : r[i] & 0xffffu);
      asm volatile("st.shared.u16 [%0], %1;\n" ::"r"(row + 2 * g), "h"(v) : "memory");
    }
  }
#endif
}

// The products issued so far as one group (wg_issued), and the wait for every issued group
// (wg_complete): in between the warpgroup may do other work that leaves the products'
// accumulators and register operands alone.
__device__ __forceinline__ void wg_issued() {
#if defined(LINATTN_WGMMA)
  wg_commit();
#endif
}
__device__ __forceinline__ void wg_complete() {
#if defined(LINATTN_WGMMA)
  wg_wait();
#endif
}
// Waits for every group but the last one issued.
__device__ __forceinline__ void wg_complete_prior() {
#if defined(LINATTN_WGMMA)
  asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
#endif
}

// Keeps the compiler from moving the writes of registers f past the next wgmma fence or wait.
template <int N>
__device__ __forceinline__ void reg_pin(uint32_t (&f)[N]) {
#if defined(LINATTN_WGMMA)
#pragma unroll
  for (int q = 0; q < N; ++q) asm volatile("" : "+r"(f[q])::"memory");
#else
  (void)f;
#endif
}

// Between writing A fragments in registers and the next product of an already open group that
// reads them (the group's first product takes wg_begin): the fragments are complete first.
template <int N, class... More>
__device__ __forceinline__ void wg_frags_written(uint32_t (&f)[N], More&... more) {
  reg_pin(f);
  (reg_pin(more), ...);
#if defined(LINATTN_WGMMA)
  wg_fence();
#endif
}

// Before the first wg_gemm of a group whose accumulators other instructions wrote, and after
// the group: the products of this warpgroup are complete and their registers readable.
template <int NT>
__device__ __forceinline__ void wg_begin(float (&acc)[NT][4]) {
#if defined(LINATTN_WGMMA)
  wg_pin(acc);
  wg_fence();
#else
  (void)acc;
#endif
}
__device__ __forceinline__ void wg_issue_done() {
  wg_issued();
  wg_complete();
}
template <int NT>
__device__ __forceinline__ void wg_done(float (&acc)[NT][4]) {
#if defined(LINATTN_WGMMA)
  wg_pin(acc);
#else
  (void)acc;
#endif
}

// Orders this thread's shared-memory writes (st.shared, cp.async) before later reads by the
// tensor cores' asynchronous proxy; a barrier after it publishes them to the warpgroup.
__device__ __forceinline__ void proxy_fence() {
#if defined(LINATTN_WGMMA)
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
#endif
}

// Per-thread register budget of the calling warpgroup (every thread of it calls): a loading
// warpgroup gives registers back (reg_dealloc) for the computing ones to take (reg_alloc).
// Elsewhere the budget stays the launch's.
template <int N>
__device__ __forceinline__ void reg_alloc() {
#if defined(LINATTN_WGMMA)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}
template <int N>
__device__ __forceinline__ void reg_dealloc() {
#if defined(LINATTN_WGMMA)
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
#endif
}

// Named barrier `id` (0 is __syncthreads) of `threads` threads.
__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace linattn::detail::cuda::chunked
