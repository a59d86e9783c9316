// The state-dependent part of the chunked prefill (the slab form; chunked_head.cu is the final
// pass on whole value heads, which chunked_prefill.cu prefers where its rule says): one CTA per
// (sequence, kv head, 64-column slab of d_v) walks the chunks of a window in order. G and
// T diag(b) come from the workspace records of chunked_prep.cu; K, Q and the slab of V from the
// call's tensors. Three warpgroups:
//   0: the state chain. It holds the d_k x 64 slice of S transposed in float32 registers and
//      takes the A operand of each product from registers (wgmma on sm_90a):
//        (K S)^T = S^T K^T;  U^T = X^T (T diag(b))^T, X = V - diag(L) K S  (U = V without the
//        delta rule);  S^T <- L_C S^T + (U diag(exp(G_C - G)))^T K
//      and hands S (at the chunk's start) and U to warpgroup 1 through shared memory.
//   1: the outputs (final pass only), up to a chunk behind:
//        O = scale (diag(L) Q S + (P o Q K^T) U), P o Q K^T in registers.
//   2: loads the tiles of the coming chunks with cp.async into kStages stages.
// Final passes with d_k = 128, one query head per state and no state split (PW) have a fourth
// warpgroup that forms P o Q K^T a chunk ahead of the outputs and hands it over as hi + lo
// tiles in the lo halves of the state buffers, which only the split writes; the outputs then
// run two products per chunk (Q S and (P o Q K^T) U, both operands from shared memory). With
// two slabs per head (d_v = 128) the two slab CTAs of a head run as a cluster whose CTAs each
// form P o Q K^T for every other chunk and copy it to the other (chunked_pair.cuh).
// Stages, state and U buffers pass between them on mbarriers, so nothing on the chain waits for
// a barrier of the whole CTA. The float32 state feeds the tensor cores rounded to 16 bits or as
// hi + lo parts (ChunkedOptions::split_state).
//
// With segments (chunked_layout.cuh) each CTA walks one segment of the window. The local pass
// (LOCAL: the chain and the loads alone, two CTAs per SM on sm_90a) skips the outputs and
// writes the segment's end state (the state fed to K S as the call's split says, LSPLIT); its
// extra CTAs run the same recurrence on d_k x 64 column
// blocks of the transition product (start I, V = 0: then
// S <- exp(G_C) S - K^T diag(exp(G_C - G)) T diag(b L) K S = M_c S). The final pass starts
// segment s > 0 from the state the combine pass left in slot s - 1. With prefix segments
// (KernelArgs::prefix) there is no local pass: every segment's CTA starts at the window's first
// chunk from slot 0 and walks the chunks before its segment with the chain alone (the loads
// skip Q, the outputs warpgroup only keeps the stages' phases), then its own with outputs.
//
// Serving calls (SERVING, chunked_layout.cuh): CTA i of a window walks the i-th entry of the
// window map, a sequence with chunks in the window from its read slot (or zeros, or its carry
// slot) to its write slot (or its carry slot), or one prefix segment of a split sequence (from
// its split slot, its chain alone before its own chunks, only the last one keeping the end
// state), and stores prefix checkpoints at the ends of the chunks it writes outputs for.
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"
#include "cuda/chunked_pair.cuh"
#include "cuda/chunked_scan_tiles.cuh"
#include "cuda/chunked_wgmma.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

// The local pass runs the chain and the loads alone, two CTAs per SM where the registers can be
// handed over (setmaxnreg, sm_90a); other architectures keep one CTA per SM with the launch's
// registers for the chain.
#if defined(LINATTN_WGMMA)
constexpr int kLocalCtas = 2;
#else
constexpr int kLocalCtas = 1;
#endif

// The shared memory and threads of a pass. Each prefetch stage holds 16-bit tiles of kC rows,
// each on a 1024-byte boundary: K, Q ([kC][DK] each; the local pass has no Q), T diag(b) and
// the slab of V ([kC][kC] each); the stages' G (kC float32 each) follow the last stage. Then
// the state buffers (tiles [d_k][64]): the final pass has two (by chunk parity) of hi and lo
// tiles for the outputs, the local pass one lo tile; then the final pass's two U buffers
// ([kC][64]); then the mbarriers: the stages' fullA, fullB and empty, and per buffer sfull,
// ufull and ofree.
template <int DK, bool LOCAL, bool PW = false>
struct ScanPlan {
  static constexpr int kStage = (LOCAL ? 1 : 2) * kC * DK + 2 * kC * kC;  // elements per stage
  static constexpr int kOffQ = kC * DK;  // the final pass only
  static constexpr int kOffT = (LOCAL ? 1 : 2) * kC * DK;
  static constexpr int kOffV = kOffT + kC * kC;
  static constexpr int kStateElems = (LOCAL ? 1 : 4) * DK * kSlab;
  static constexpr int kUElems = LOCAL ? 0 : 2 * kC * kSlab;
  static constexpr int kBarriers = 3 * kStages + 3 * 2 + (PW ? 3 : 0);
  static constexpr int kComputeWarps = LOCAL ? 4 : (PW ? 12 : kWarps);
  static constexpr int kThreadsAll = 32 * kComputeWarps + 128;
  static constexpr int kCtas = LOCAL ? kLocalCtas : 1;
  // Threads that read a stage and release it (empty).
  static constexpr int kReaders = 32 * kComputeWarps;
  // Registers per thread: 168 at launch in the final pass (three warpgroups, one CTA per SM);
  // the loading warpgroup gives 48 of them to each computing one (2 x 192 + 120 = 3 x 168),
  // which keeps the loops free of spills (with d_k = 64 too since the outputs went to exp2: at
  // 168 the serving kernel spilled 284 bytes). The local pass launches at 128 (two CTAs of two
  // warpgroups per SM) and hands 64 of the loader's to the chain (64 + 192 = 2 x 128).
  // PW launches four warpgroups at 128: the chain takes 192, the outputs 136, the P o Q K^T
  // warpgroup keeps 128 and the loader 56 (192 + 136 + 128 + 56 = 4 x 128).
  static constexpr int kLoadRegs = LOCAL ? 64 : (PW ? 56 : 120);
  static constexpr int kMathRegs = 192;
  static constexpr int kOutRegs = PW ? 136 : 192;
  static_assert(!PW || (!LOCAL && kMathRegs + kOutRegs + 128 + kLoadRegs == 4 * 128), "PW register budget");
  // PW: the hi and lo tiles of P o Q K^T ([kC][kC] each) fill the lo half of a state buffer.
  static_assert(!PW || DK * kSlab == 2 * kC * kC, "PW needs d_k = 128");
  static constexpr size_t bytes() {
    return (kStages * static_cast<size_t>(kStage + 2 * kC) + kStateElems + kUElems) * 2 +
           kBarriers * sizeof(uint64_t);
  }
  static_assert(kStage * 2 % 1024 == 0 && kC * 64 * 2 % 1024 == 0, "swizzled tiles on 1024-byte boundaries");
};
// sm_90: 228 KB of shared memory per SM, 1 KB of it reserved per CTA, at most 227 KB per CTA.
static_assert(ScanPlan<128, false>::bytes() <= 227 * 1024, "one final-pass CTA per SM on sm_90");
static_assert(2 * (ScanPlan<128, true>::bytes() + 1024) <= 228 * 1024, "two local-pass CTAs per SM on sm_90");




// The warp's 16 rows of a 64 x 64 product as 16-bit pairs w[hh][j] (rows 16 (w & 3) + lane / 4 +
// 8 hh, columns 8 j + 2 (lane % 4) and the next), regrouped through the warp's own 2 KB of shared
// memory (`scratch`: 16 rows of 128 bytes, each 16-byte piece XORed with the row, so that
// neither side meets a bank conflict) into whole 16-byte pieces: pc[k] is row 4 k + lane / 8 of
// the warp's rows, columns 8 (lane % 8) .. + 7. Each store of a warp then writes four whole
// 128-byte rows (in registers the trade took 3 shuffles and about 50 selects per row pair).
__device__ __forceinline__ void rows_to_pieces(const uint32_t (&w)[2][8], void* scratch, uint32_t (&pc)[4][4]) {
  const int lane = threadIdx.x & 31;
  const uint32_t base = smem_addr(scratch);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // stmatrix: lanes 8 i .. 8 i + 7 address the rows of matrix i (rows + 8 (i & 1), piece
  // jb + (i >> 1)), register i holds the lane's pair of matrix i.
  const int mi = lane >> 3, r = 8 * (mi & 1) + (lane & 7);
#pragma unroll
  for (int jb = 0; jb < 8; jb += 2) {
    const uint32_t a = base + r * 128 + (((jb + (mi >> 1)) ^ (r & 7)) << 4);
    asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1,%2,%3,%4};\n" ::"r"(a), "r"(w[0][jb]),
                 "r"(w[1][jb]), "r"(w[0][jb + 1]), "r"(w[1][jb + 1])
                 : "memory");
  }
#else
  const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int r = g + 8 * hh;
      asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(base + r * 128 + ((j ^ (r & 7)) << 4) + 4 * t4), "r"(w[hh][j])
                   : "memory");
    }
  }
#endif
  __syncwarp();
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const int r = 4 * k + (lane >> 3);
    asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(pc[k][0]), "=r"(pc[k][1]), "=r"(pc[k][2]), "=r"(pc[k][3])
                 : "r"(base + r * 128 + (((lane & 7) ^ (r & 7)) << 4))
                 : "memory");
  }
}


// ao += (P o Q K^T) U over the chunk (four k steps, hi and lo parts), U a [kC][64] tile of
// layout tu.
template <bool BF16>
__device__ __forceinline__ void p_times_u(float (&ao)[8][4], const uint32_t (&ph)[4][4], const uint32_t (&pl)[4][4],
                                          const uint16_t* U, Tile tu) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    wg_gemm_ra<BF16>(ao, ph[kk], U + il(16 * kk, 0, tu), tu);
    wg_gemm_ra<BF16>(ao, pl[kk], U + il(16 * kk, 0, tu), tu);
  }
}


template <bool BF16, int DK, bool DELTA, bool LOCAL, bool SERVING, bool PW, bool LSPLIT>
__global__ void __launch_bounds__(ScanPlan<DK, LOCAL, PW>::kThreadsAll, ScanPlan<DK, LOCAL, PW>::kCtas)
    chunked_scan_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  using Plan = ScanPlan<DK, LOCAL, PW>;
  constexpr int kStage = Plan::kStage;
  constexpr Tile kBuf = interleaved(kSlab / 8);  // the state and U buffers
  // The state slice of warpgroup 0 (d_k x 64) as NS products of 64 rows.
  constexpr int NS = DK / 64;

  extern __shared__ __align__(1024) unsigned char smem[];
  uint16_t* stages = reinterpret_cast<uint16_t*>(smem);  // [kStages][kStage]
  float* gstage = reinterpret_cast<float*>(stages + kStages * kStage);  // [kStages][kC]
  // Final pass: [2][hi, lo][d_k][kSlab]; local pass: one lo tile [d_k][kSlab].
  uint16_t* Sbuf = reinterpret_cast<uint16_t*>(gstage + kStages * kC);
  uint16_t* Ubuf = Sbuf + Plan::kStateElems;  // [2][kC][kSlab] (final pass)
  // fullA[s]: K, T diag(b), V and G of stage s loaded (the loading warpgroup's 128 threads
  // arrive, each once its copies landed), all that warpgroup 0 reads; fullB[s]: Q too, loaded
  // last; empty[s]: stage s read (the threads of the computing warpgroups arrive).
  // sfull[b] / ufull[b]: the state / U of the chunk in buffer b written (warpgroup 0);
  // ofree[b]: that chunk's outputs done with both (warpgroup 1).
  uint64_t* fullA = reinterpret_cast<uint64_t*>(Ubuf + Plan::kUElems);
  uint64_t* fullB = fullA + kStages;
  uint64_t* empty = fullB + kStages;
  uint64_t* sfull = empty + kStages;
  uint64_t* ufull = sfull + 2;
  uint64_t* ofree = ufull + 2;
  // PW: pfull[b]: P o Q K^T of the chunk in buffer b written (warpgroup 2); ofree frees it too.
  // Pair (args.pair): the CTA of rank r forms P o Q K^T for the chunks of buffer r alone and
  // copies it into the peer's buffer r too; pfull[1 - r] completes on that copy (one arrival
  // and its bytes), and rfree on the peer's outputs done with a chunk of buffer r (one
  // arrival each).
  uint64_t* pfull = ofree + 2;
  uint64_t* rfree = pfull + 2;
  const bool pair = PW && args.pair;
  const int rank = pair ? cluster_rank() : 0;

  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int slabs = p.dv / kSlab;
  // Column blocks: the value slabs, then (local pass) the blocks of the transition product.
  const int nsl = LOCAL ? slabs + DK / kSlab : slabs;
  const int slab = blockIdx.x % nsl;
  const bool is_m = LOCAL && slab >= slabs;
  const int vcol = (is_m ? slab - slabs : slab) * kSlab;
  const int qpk = p.q_per_kv();
  // What this CTA walks (Walk, chunked_scan_tiles.cuh).
  const SeqTable tab{args.table, args.ix.N};
  Walk wk;
  if constexpr (!SERVING) {
    const int64_t heads = p.B * p.Hkv;
    const int64_t lane_bh = (blockIdx.x / nsl) % heads;
    const int lane_seg = static_cast<int>(blockIdx.x / nsl / heads);
    // Segment 0 starts from the true state: its transition product is never needed.
    if (is_m && lane_seg == 0) return;
    dense_walk<DK>(args, lane_bh, lane_seg, !LOCAL && args.prefix, wk);
  } else {
    if (!serving_walk<DK>(args, tab, static_cast<int>((blockIdx.x / nsl) % p.Hkv), blockIdx.x / nsl / p.Hkv, wk)) {
      return;
    }
  }
  const int64_t bh = wk.bh, b = wk.b, pbeg = wk.pbeg, cbeg = wk.cbeg, cend = wk.cend, rec0 = wk.rec0,
                tbase = wk.tbase, tok_end = wk.tok_end, seq_n = wk.seq_n, seq_len = wk.seq_len;
  const int h = wk.h, seg = wk.seg;
  const float* init_f = wk.init_f;
  const void* init_p = wk.init_p;
  const linattn_dtype init_dt = wk.init_dt;
  const int64_t init_sk = wk.init_sk;
  float* fin_f = wk.fin_f;
  void* fin_p = wk.fin_p;
  const int64_t fin_sk = p.pres_sk;
  // Prefix segments all start from slot 0.
  const int64_t slot = bh * args.nseg + (!LOCAL && args.prefix ? 0 : seg);

  const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + p.key_head(h) * DK;
  const uint16_t* qbase0 = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, 0) * DK;
  const uint16_t* vbase = static_cast<const uint16_t*>(p.v) + b * p.v_sb + h * p.dv + vcol;

  // Warpgroup 0 runs the state chain, warpgroup 1 the outputs of the final pass, each on the
  // whole 64-column slab. Warpgroup 0 keeps the state transposed in registers (StateMap) and
  // takes the A operand of every product of its chain from registers:
  //   (K S)^T = S^T K^T                      A = S^T rounded to 16 bits
  //   U^T = X^T (T diag(b))^T                A = X^T = V^T - (K S)^T diag(L) (hi + lo)
  //   S^T <- L_C S^T + (U diag(exp(G_C - G)))^T K
  // so nothing on the chain passes through shared memory or a barrier (but the lo part of a
  // split state, below). It hands the state at the start of chunk i and U of chunk i to
  // warpgroup 1 in buffer i % 2 (stored transposed: the [d_k][64] and [kC][64] tiles the
  // outputs read), so it works on chunk i while the outputs finish chunk i - 1.
  constexpr int kBarOut = 1;  // warpgroup 1's own named barrier
  const int wg = w >> 2, wr = w & 3;
  const int row = 16 * wr + g;  // rows row and row + 8 of the chunk products (accumulator layout)

  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(fullA + s, 128);
      mbar_init(fullB + s, 128);
      mbar_init(empty + s, Plan::kReaders);
    }
    for (int i = 0; i < 2; ++i) {
      mbar_init(sfull + i, 128);
      mbar_init(ufull + i, 128);
      mbar_init(ofree + i, 128);
      if (PW) mbar_init(pfull + i, pair && i != rank ? 1 : 128);
    }
    if (PW) mbar_init(rfree, 1);
  }
  if (pair) {
    cluster_sync_all();
  } else {
    __syncthreads();
  }

  if (w >= Plan::kComputeWarps) {
    reg_dealloc<Plan::kLoadRegs>();
    const int lt = tid - 32 * Plan::kComputeWarps;
    // The loading warpgroup: chunk cl of the window into stage i % kStages once the other two
    // have released that stage's previous chunk (the transition-product blocks have no values:
    // V = 0).
    int s = 0;
    for (int64_t cl = pbeg, i = 0; cl < cend; ++cl, ++i) {
      if (i >= kStages) mbar_wait(empty + s, static_cast<uint32_t>((i / kStages - 1) & 1));
      const int64_t t0 = tbase + cl * kC;
      const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
      const int64_t rec = rec0 + (SERVING && args.time_major ? tab.off(cl) : cl);
      uint16_t* st = stages + s * kStage;
      load_tile<DK, 128, true>(st, kbase + t0 * p.k_st, p.k_st, n, args.vec_in, lt);
      if (DELTA) load_tile<kC, 128, true, true>(st + Plan::kOffT, args.t + rec * kC * kC, kC, kC, true, lt);
      if (!is_m) load_tile<kSlab, 128, true>(st + Plan::kOffV, vbase + t0 * p.v_st, p.v_st, n, args.vec_in, lt);
      if (lt < kC / 4) cp_async16(gstage + s * kC + 4 * lt, args.g + rec * kC + 4 * lt, true);
      // Unaligned rows were stored synchronously: the arrival releases them.
      mbar_track_cp_async(fullA + s);
      mbar_arrive(fullA + s);
      if (!LOCAL) {
        // A chunk before the segment needs no Q; its arrival keeps the outputs' phases.
        if (cl >= cbeg) {
          load_tile<DK, 128, true>(st + Plan::kOffQ, qbase0 + t0 * p.q_st, p.q_st, n, args.vec_in, lt);
          mbar_track_cp_async(fullB + s);
        }
        mbar_arrive(fullB + s);
      }
      s = s + 1 == kStages ? 0 : s + 1;
    }
    cp_async_wait_all();
    return;
  }
  if constexpr (!PW) reg_alloc<Plan::kMathRegs>();

  // X = V - diag(L) K S feeds T diag(b) as hi + lo parts: rounded once to 16 bits it put
  // five serving tests over their 3e-3 bound and the ungated delta rule at 3.2e-3 (2.6e-3
  // split). The local pass of a segment after the first starts from zero (or I) and skips the
  // split. The state's split follows the call in both passes (the local pass's as a template
  // argument, LSPLIT: as a run-time flag ptxas serialized its k-step issue): the local pass
  // rounds S to 16 bits for K S where the final pass does.
  const bool xsplit = !LOCAL || seg == 0;
  const bool ssplit = LOCAL ? LSPLIT : args.split;
  if (wg == 0) {
    // (PW: each warpgroup takes its registers where its code starts, so that ptxas gives each
    // branch its own budget.)
    if constexpr (PW) reg_alloc<Plan::kMathRegs>();
    const StateMap sm{row, 2 * t4};
    float accS[NS][8][4];
    // The start state: float32 from the segment slots or the carry, else past (any dtype), else
    // zeros; the transition-product blocks start from I, the local pass of later segments
    // from zero. The local pass of segment 0 also copies its start to slot 0: the final pass
    // reads it there, as past and carry may be overwritten by then.
    if (is_m) {
      for_state<NS>(sm, 0, vcol, [&](int hf, int j, int e, int64_t) {
        accS[hf][j][e] = sm.d(hf, j, e) == vcol + sm.c(e) ? 1.f : 0.f;
      });
    } else if (!LOCAL && args.nseg > 1) {
      load_state(accS, args.seg_state + slot * DK * p.dv, LINATTN_FLOAT32, p.dv, sm, vcol);
    } else if (!(LOCAL && seg > 0) && (init_f || init_p)) {
      if (init_f) {
        load_state(accS, init_f, LINATTN_FLOAT32, p.dv, sm, vcol);
      } else {
        load_state(accS, init_p, init_dt, init_sk, sm, vcol);
      }
    } else {
      for_state<NS>(sm, 0, 0, [&](int hf, int j, int e, int64_t) { accS[hf][j][e] = 0.f; });
    }
    if (LOCAL && !is_m && seg == 0) store_state(accS, args.seg_state + slot * DK * p.dv, LINATTN_FLOAT32, p.dv, sm, vcol);
    // S^T rounded to 16 bits as A fragments (k step kk: d = 16 kk ..); with the split, the
    // lo parts go through shared memory (buffer i % 2, which the outputs read too) and enter
    // K S as a transposed tile operand, which keeps the chain free of spills.
    constexpr int KS = DK / 16;
    uint32_t sh[KS][4];
    const auto state_frags = [&](int k0, int k1) {
#pragma unroll
      for (int kk = k0; kk < k1; ++kk) acc_frag<BF16>(accS[kk >> 2], kk & 3, sh[kk]);
    };
    state_frags(0, KS);
    // This lane's row of the transposed fragment loads (V) and stores (S, U) in [.][64] tiles.
    // V's tile is swizzled: the k steps below move whole atoms, which the swizzle leaves alone.
    const int foff = frag_t_offset(kBuf), voff = swz_off(frag_t_offset(kStaged));
    constexpr int kBarWg = 2;  // warpgroup 0's own named barrier
    // The local pass issues the products after K S k step by k step (below); a prefix segment's
    // chain keeps the final pass's order, so that its state is the uncut call's to the bit (and
    // k-step issue measured 1% slower there).
    constexpr bool kPipe = LOCAL;
    int s = 0;  // the stage of chunk cl, in its use of parity `phase`
    uint32_t phase = 0;
    const int64_t npre = cbeg - pbeg;  // chunks before the segment
    // One chunk of the chain; OUT: a chunk with outputs (the final pass from the segment's first
    // chunk on), else the chain alone (the local pass, and the chunks a prefix segment walks
    // before its own), which hands nothing to the outputs.
    const auto chunk = [&](auto out_tag, int64_t cl, int64_t i) __attribute__((always_inline)) {
      constexpr bool OUT = decltype(out_tag)::value;
      const uint16_t* st = stages + s * kStage;
      const uint16_t* Ks = st;
      const uint16_t* Tbs = st + Plan::kOffT;
      const uint16_t* Vs = st + Plan::kOffV;
      const float* Gs = gstage + s * kC;
      // io: the chunk's index among those with outputs (negative before the segment, where the
      // buffers still alternate by chunk: the split state's lo tile feeds the chain's K S).
      const int64_t io = i - npre;
      const int bsel = static_cast<int>(io & 1);
      uint16_t* sb = Sbuf + bsel * 2 * DK * kSlab;  // final pass
      uint16_t* slo = LOCAL ? Sbuf : sb + DK * kSlab;
      mbar_wait(fullA + s, phase);
      proxy_fence();
      float au[8][4];  // (K S)^T
      if constexpr (DELTA) {
        wg_begin(au);
        const BTile<true> bk(Ks, kStaged);
#pragma unroll
        for (int kk = 0; kk < KS; ++kk) wg_gemm_ra<BF16>(au, sh[kk], bk, il(0, 16 * kk, kStaged), kk > 0);
      }
      // The state at the start of chunk i to buffer i % 2 once chunk i - 2's outputs are done
      // with it (the local pass: its lo part alone, for the delta rule's K S).
      // Before the segment (the chain alone, a loop of its own: as a branch in one loop the
      // stores made ptxas serialize the products around them) nothing is handed over.
      if (OUT && io >= 2) mbar_wait(ofree + bsel, static_cast<uint32_t>(((io >> 1) - 1) & 1));
      if constexpr (OUT) {
#pragma unroll
        for (int kk = 0; kk < KS; ++kk) stsm_x4_t(sh[kk], sb + foff + il(16 * kk, 0, kBuf));
      }
      if (ssplit && (DELTA || OUT)) {
        // The local pass has one lo tile: every warp's product of chunk i - 1 has read it.
        if (LOCAL && i > 0) bar_sync(kBarWg, 128);
#pragma unroll
        for (int kk = 0; kk < KS; ++kk) {
          uint32_t lo[4];
          acc_frag_lo<BF16>(accS[kk >> 2], kk & 3, sh[kk], lo);
          stsm_x4_t(lo, slo + foff + il(16 * kk, 0, kBuf));
        }
      }
      // (Nothing stored for the chain alone without the split: no fence on its path.)
      if (OUT || ssplit) proxy_fence();
      if (DELTA && ssplit) {
        // (K S_lo)^T with S_lo^T the transpose of the [d_k][64] tile just written.
        bar_sync(kBarWg, 128);
        wg_gemm<BF16, Operand::kColsK, true>(au, slo, kBuf, Ks, kStaged, DK, true);
      }
      if constexpr (DELTA) wg_issued();
      if constexpr (OUT) mbar_arrive(sfull + bsel);
      // V^T as A fragments (k step m: tokens 16 m ..), and G of the thread's columns (tokens
      // 8 j + 2 (lane % 4) and the next).
      uint32_t vt[4][4];
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        if (is_m) {
          vt[m][0] = vt[m][1] = vt[m][2] = vt[m][3] = 0u;
        } else {
          ldsm_x4_t(vt[m], Vs + voff + il(16 * m, 0, kStaged));
        }
      }
      float2 gc[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) gc[j] = *reinterpret_cast<const float2*>(Gs + 8 * j + 2 * t4);
      const float gend = Gs[kC - 1];
      const float lend = exp_ftz(gend);
      // (U diag(exp(G_C - G)))^T as A fragments; U^T itself for the outputs (delta rule). In the
      // local pass (kPipe: the chain alone) the products after K S are issued k step by k step
      // as their A fragments are formed, so the tensor cores start on the first while the rest
      // are computed (2/8 heads 1 x 65536: -5%); in the final pass, beside the outputs'
      // products, whole products issued at once measured as fast or faster.
      uint32_t uf[4][4];
      float uu[8][4];
      // U^T (+)= (k step kk of X^T) (T diag(b))^T: T diag(b) as the K-major B operand.
      const auto u_step = [&](const uint32_t(&x)[4], int kk, bool accumulate) {
        wg_gemm_ra<BF16>(uu, x, BTile<true>(Tbs, kStaged), il(0, 16 * kk, kStaged), accumulate);
      };
      // Rows 64 hf .. of S^T (+)= (k step kk of (U diag(exp(G_C - G)))^T) K: K N-major.
      const auto update_step = [&](int hf, int kk) {
        wg_gemm_ra<BF16>(accS[hf], uf[kk], BTile<false>(Ks, kStaged), il(16 * kk, 64 * hf, kStaged));
      };
      if constexpr (DELTA) {
        wg_complete();
        wg_done(au);
        // X^T = V^T - (K S)^T diag(L), in place of (K S)^T, then U^T = X^T (T diag(b))^T
        // (kPipe: k step kk once its columns of X^T are formed).
        uint32_t xh[4][4], xl[4][4];
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
          for (int j = 2 * kk; j < 2 * kk + 2; ++j) {
            const float l0 = exp_ftz(gc[j].x), l1 = exp_ftz(gc[j].y);
#pragma unroll
            for (int e = 0; e < 4; ++e) au[j][e] = frag_elem<BF16>(vt, j, e) - (e & 1 ? l1 : l0) * au[j][e];
          }
          acc_frag<BF16>(au, kk, xh[kk]);
          if (xsplit) acc_frag_lo<BF16>(au, kk, xh[kk], xl[kk]);
          if constexpr (kPipe) {
            if (kk == 0) {
              wg_begin(uu);
            } else {
              wg_frags_written(xh[kk], xl[kk]);  // (xl unused without xsplit)
            }
            u_step(xh[kk], kk, kk > 0);
            if (xsplit) u_step(xl[kk], kk, true);
          }
        }
        if constexpr (!kPipe) {
          wg_begin(uu);
#pragma unroll
          for (int kk = 0; kk < 4; ++kk) u_step(xh[kk], kk, kk > 0);
          if (xsplit) {
#pragma unroll
            for (int kk = 0; kk < 4; ++kk) u_step(xl[kk], kk, true);
          }
        }
        wg_issued();
      } else {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) uu[j][e] = frag_elem<BF16>(vt, j, e);
        }
      }
      // While U is on the tensor cores (delta rule): the decay of U's rows and of the state.
      float2 fr[8];  // exp(G_C - G) of the thread's columns
#pragma unroll
      for (int j = 0; j < 8; ++j) fr[j] = make_float2(exp_ftz(gend - gc[j].x), exp_ftz(gend - gc[j].y));
#pragma unroll
      for (int hf = 0; hf < NS; ++hf) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) accS[hf][j][e] *= lend;
        }
      }
      if constexpr (DELTA) {
        wg_complete();
        wg_done(uu);
      }
      // S^T <- exp(G_C) S^T + (U diag(exp(G_C - G)))^T K: K as the N-major B operand. The first
      // 64 rows of d_k go in a group of their own (kPipe: k step by k step as U's fragments are
      // formed), so that their state fragments are formed while the other rows' products run.
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int j = 2 * kk + (q >> 1), e = 2 * (q & 1);
          uf[kk][q] = pack2<BF16>(uu[j][e] * fr[j].x, uu[j][e + 1] * fr[j].y);
        }
        if constexpr (kPipe) {
          if (kk == 0) {
#pragma unroll
            for (int hf = 0; hf < NS; ++hf) wg_begin(accS[hf]);
          } else {
            wg_frags_written(uf[kk]);
          }
          update_step(0, kk);
        }
      }
      if constexpr (!kPipe) {
#pragma unroll
        for (int hf = 0; hf < NS; ++hf) wg_begin(accS[hf]);
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) update_step(0, kk);
      }
      wg_issued();
#pragma unroll
      for (int hf = 1; hf < NS; ++hf) {
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) update_step(hf, kk);
      }
      if constexpr (NS > 1) wg_issued();
      if constexpr (DELTA && OUT) {
        // U of chunk i to buffer i % 2 while the update runs.
        uint32_t upub[4][4];
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) acc_frag<BF16>(uu, kk, upub[kk]);
        uint16_t* ub = Ubuf + bsel * kC * kSlab;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) stsm_x4_t(upub[kk], ub + foff + il(16 * kk, 0, kBuf));
        proxy_fence();
        mbar_arrive(ufull + bsel);
      }
      if constexpr (NS > 1) {
        // The state fragments of the first 64 rows while the others' products run.
        wg_complete_prior();
        wg_done(accS[0]);
        state_frags(0, 4);
      }
      wg_complete();
#pragma unroll
      for (int hf = 0; hf < NS; ++hf) wg_done(accS[hf]);
      // Every read of the stage by this warpgroup is complete (the products' waits included).
      mbar_arrive(empty + s);
      state_frags(NS > 1 ? 4 : 0, KS);
      if constexpr (SERVING) store_checkpoint(accS, args, cl, cbeg, seq_n, seq_len, h, sm, vcol);
      next_stage(s, phase);
    };
    int64_t cl = pbeg, i = 0;
    for (; cl < (LOCAL ? cend : cbeg); ++cl, ++i) chunk(std::false_type{}, cl, i);
    if constexpr (!LOCAL) {
      for (; cl < cend; ++cl, ++i) chunk(std::true_type{}, cl, i);
    }

    if (LOCAL) {
      if (is_m) {
        store_state(accS, args.seg_m + slot * DK * DK, LINATTN_FLOAT32, DK, sm, vcol);
      } else {
        store_state(accS, args.seg_state + (slot + 1) * DK * p.dv, LINATTN_FLOAT32, p.dv, sm, vcol);
      }
    } else if (seg + 1 == args.nseg && (!SERVING || fin_p || fin_f)) {  // only the last segment's end state leaves the window
      if (fin_p) {
        store_state(accS, fin_p, p.present_dtype, fin_sk, sm, vcol);
      } else {
        store_state(accS, fin_f, LINATTN_FLOAT32, p.dv, sm, vcol);
      }
    }
  } else if constexpr (!LOCAL) {
    if (PW && wg == 2) {
      // P o Q K^T of chunk i (one query head) to buffer i % 2 as hi + lo tiles, once chunk
      // i - 2's outputs are done with that buffer; the stage is released as soon as Q K^T is
      // complete and G is in registers.
      // Pair: only the chunks of buffer `rank`; the tile then goes to the peer's buffer too,
      // once the peer's outputs are done with the chunk two before (rfree).
      constexpr int kBarP = 3;  // warpgroup 2's own named barrier
      constexpr uint32_t kPBytes = 2 * kC * kC * 2;
      int s = 0;
      uint32_t phase = 0;
      skip_chunks(cbeg - pbeg, fullB, empty, s, phase);
      for (int64_t cl = cbeg, i = 0; cl < cend; ++cl, ++i) {
        const uint16_t* st = stages + s * kStage;
        const float* Gs = gstage + s * kC;
        const int bsel = static_cast<int>(i & 1);
        uint16_t* P = Sbuf + bsel * 2 * DK * kSlab + DK * kSlab;
        if (pair && bsel != rank) {
          skip_chunks(1, fullB, empty, s, phase);
          continue;
        }
        mbar_wait(fullB + s, phase);
        proxy_fence();
        float qk[8][4], grow[2];
        float2 gcol[8];
        qk_with_gates<BF16, DK>(qk, st + Plan::kOffQ, st, Gs, row, grow, gcol);
        mbar_arrive(empty + s);
        uint32_t ph[4][4], pl[4][4];
        build_p<BF16>(qk, gcol, grow, row, wr, ph, pl);
        if (i >= 2) {
          const uint32_t par = static_cast<uint32_t>(((i >> 1) - 1) & 1);
          mbar_wait(ofree + bsel, par);
          if (pair) mbar_wait_cluster(rfree, par);
        }
        store_p(ph, P, row);
        store_p(pl, P + kC * kC, row);
        proxy_fence();
        mbar_arrive(pfull + bsel);
        if (pair) {
          bar_sync(kBarP, 128);
          if (tid == 2 * 128) copy_to_peer(peer_addr(P, rank ^ 1), P, kPBytes, peer_addr(pfull + bsel, rank ^ 1));
        }
        next_stage(s, phase);
      }
      // Pair: the peer has read the last tile this CTA copied (and so has made its last
      // arrival here) before this CTA may exit.
      const int64_t own = pair ? (cend - cbeg + 1 - rank) / 2 : 0;
      if (own > 0) mbar_wait_cluster(rfree, static_cast<uint32_t>((own - 1) & 1));
      return;
    }
    // Outputs of every query head reading this state: scale (diag(L) Q S + (P o Q K^T) U),
    // P o Q K^T formed in registers as hi + lo A fragments (PW: read from buffer i % 2).
    if constexpr (PW) reg_alloc<Plan::kOutRegs>();
    const int t = tid - 128;
    // The output pieces of the previous product (rows_to_pieces: piece k is row 16 wr + 4 k +
    // lane / 8 of its chunk), stored once the next products are issued so that the stores run
    // beside the tensor cores: piece k goes to pbase + 4 k rows when 4 k < prows; pbase null:
    // nothing to store.
    uint32_t pend[4][4];
    uint16_t* pbase = nullptr;
    int prows = 0;
    const auto flush = [&]() {
      if (pbase == nullptr) return;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (4 * k >= prows) continue;
        store_out8(pbase + 4 * k * p.o_st, pend[k], args.vec_out16, args.vec_out);
      }
    };
    int s = 0;
    uint32_t phase = 0;
    skip_chunks(cbeg - pbeg, fullB, empty, s, phase);
    for (int64_t cl = cbeg, i = 0; PW && cl < cend; ++cl, ++i) {
      // One query head, no split: O = scale (diag(L) (Q S) + (P o Q K^T) U), the two products
      // in separate accumulators, issued back to back.
      const int64_t t0 = tbase + cl * kC;
      const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
      uint16_t* Qs = stages + s * kStage + Plan::kOffQ;
      const float* Gs = gstage + s * kC;
      const int bsel = static_cast<int>(i & 1);
      const uint32_t bpar = static_cast<uint32_t>((i >> 1) & 1);
      const uint16_t* Shi = Sbuf + bsel * 2 * DK * kSlab;
      const uint16_t* P = Shi + DK * kSlab;
      const uint16_t* Ucur = DELTA ? Ubuf + bsel * kC * kSlab : stages + s * kStage + Plan::kOffV;
      constexpr Tile tu = DELTA ? kBuf : kStaged;
      mbar_wait(fullB + s, phase);
      proxy_fence();
      const float lr[2] = {exp_ftz(Gs[row]), exp_ftz(Gs[row + 8])};
      float aq[8][4], ap[8][4];
      mbar_wait(sfull + bsel, bpar);
      wg_begin(aq);
      wg_gemm<BF16, Operand::kRowsK>(aq, Qs, kStaged, Shi, kBuf, DK, false);
      wg_issued();
      mbar_wait(pfull + bsel, bpar);
      if (DELTA) mbar_wait(ufull + bsel, bpar);
      wg_begin(ap);
      wg_gemm<BF16, Operand::kRowsK>(ap, P, kPTile, Ucur, tu, kC, false);
      wg_gemm<BF16, Operand::kRowsK>(ap, P + kC * kC, kPTile, Ucur, tu, kC, true);
      wg_issued();
      flush();
      wg_complete();
      wg_done(aq);
      wg_done(ap);
      uint32_t ow[2][8];
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          const float l = p.scale * lr[hh];
          ow[hh][j] = pack2<BF16>(l * aq[j][2 * hh] + p.scale * ap[j][2 * hh],
                                  l * aq[j][2 * hh + 1] + p.scale * ap[j][2 * hh + 1]);
        }
      }
      // The outputs pass through the first 64 columns of the Q tile (the warp's 16 rows), as
      // below; warpgroup 2 finished its Q K^T before P o Q K^T was published.
      bar_sync(kBarOut, 128);
      // Pair: every warp's products are complete, so the peer may refill its tile here.
      if (pair && bsel != rank && t == 0) mbar_arrive_peer(peer_addr(rfree, rank ^ 1));
      rows_to_pieces(ow, Qs + 16 * wr * 64, pend);
      const int r0 = 16 * wr + (lane >> 3);
      pbase = static_cast<uint16_t*>(p.out) + b * p.o_sb + p.output_head(h, 0) * p.dv + vcol + (t0 + r0) * p.o_st +
              8 * (lane & 7);
      prows = n - r0;
      // Every read of buffer bsel and of the stage is complete.
      mbar_arrive(ofree + bsel);
      mbar_arrive(empty + s);
      next_stage(s, phase);
    }
    for (int64_t cl = cbeg, i = 0; !PW && cl < cend; ++cl, ++i) {
      const int64_t t0 = tbase + cl * kC;
      const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
      uint16_t* st = stages + s * kStage;
      const uint16_t* Ks = st;
      uint16_t* Qs = st + Plan::kOffQ;
      const uint16_t* Vs = st + Plan::kOffV;
      const float* Gs = gstage + s * kC;
      const int bsel = static_cast<int>(i & 1);
      const uint32_t bpar = static_cast<uint32_t>((i >> 1) & 1);
      const uint16_t* Shi = Sbuf + bsel * 2 * DK * kSlab;
      const uint16_t* Slo = Shi + DK * kSlab;
      const uint16_t* Ucur = DELTA ? Ubuf + bsel * kC * kSlab : Vs;
      mbar_wait(fullB + s, phase);
      proxy_fence();
      // G of the thread's rows and columns, read before the stage is released.
      const float grow[2] = {Gs[row] * kLog2e, Gs[row + 8] * kLog2e};  // log2 units
      const float lr[2] = {exp2_ftz(grow[0]), exp2_ftz(grow[1])};
      float2 gcol[8];
      gcol_log2(Gs, gcol);
      for (int jq = 0; jq < qpk; ++jq) {
        if (jq > 0) {
          // Q of the next head replaces the previous head's in this stage (warpgroup 0 reads
          // K, T and V only).
          bar_sync(kBarOut, 128);
          const uint16_t* qbase = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, jq) * DK;
          load_tile<DK, 128>(Qs, qbase + t0 * p.q_st, p.q_st, n, args.vec_in, t);
          cp_async_wait_all();
          proxy_fence();
          bar_sync(kBarOut, 128);
        }
        // Q K^T needs no state: it goes first, then Q S once the state is there; P o Q K^T is
        // formed while Q S is on the tensor cores.
        float ao[8][4], qk[8][4];
        uint32_t ph[4][4], pl[4][4];
        wg_begin(qk);
        wg_gemm<BF16, Operand::kRowsK, true>(qk, Qs, kStaged, Ks, kStaged, DK, false);
        wg_issued();
        if (jq == 0) mbar_wait(sfull + bsel, bpar);
        wg_begin(ao);
        wg_gemm<BF16, Operand::kRowsK>(ao, Qs, kStaged, Shi, kBuf, DK, false);
        if (ssplit) wg_gemm<BF16, Operand::kRowsK>(ao, Qs, kStaged, Slo, kBuf, DK, true);
        wg_issued();
        flush();
        wg_complete_prior();
        wg_done(qk);
        build_p<BF16>(qk, gcol, grow, row, wr, ph, pl);
        wg_complete();
        wg_done(ao);
#pragma unroll
        for (int j = 0; j < 8; ++j) {
#pragma unroll
          for (int e = 0; e < 4; ++e) ao[j][e] *= lr[e >> 1];
        }
        if (DELTA && jq == 0) mbar_wait(ufull + bsel, bpar);
        wg_begin(ao);
        p_times_u<BF16>(ao, ph, pl, Ucur, DELTA ? kBuf : kStaged);
        wg_issue_done();
        wg_done(ao);
        uint32_t ow[2][8];
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
#pragma unroll
          for (int j = 0; j < 8; ++j) ow[hh][j] = pack2<BF16>(p.scale * ao[j][2 * hh], p.scale * ao[j][2 * hh + 1]);
        }
        // The outputs pass through the first 64 columns of this head's Q tile (the warp's 16
        // rows): every warp's products are complete once all four reach the barrier.
        bar_sync(kBarOut, 128);
        rows_to_pieces(ow, Qs + 16 * wr * 64, pend);
        // With the delta rule U comes from buffer bsel: the last head's outputs were this
        // warpgroup's last use of the stage (K, Q; G is in registers), and releasing it now
        // lets the loads run ahead while the outputs lag the chain.
        if (DELTA && jq + 1 == qpk) mbar_arrive(empty + s);
        const int r0 = 16 * wr + (lane >> 3);
        pbase = static_cast<uint16_t*>(p.out) + b * p.o_sb + p.output_head(h, jq) * p.dv + vcol +
                (t0 + r0) * p.o_st + 8 * (lane & 7);
        prows = n - r0;
      }
      // Every read of buffer bsel (and without the delta rule, of the stage's V) is complete.
      mbar_arrive(ofree + bsel);
      if (!DELTA) mbar_arrive(empty + s);
      next_stage(s, phase);
    }
    flush();
  }
}

// The kernel's shared-memory attributes on the current device: its dynamic size, and for two
// local-pass CTAs per SM the largest carveout (the driver could otherwise pick one that holds a
// single CTA).
template <int DK, bool LOCAL, bool PW = false>
cudaError_t prepare(void (*kernel)(KernelArgs)) {
  using Plan = ScanPlan<DK, LOCAL, PW>;
  cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(Plan::bytes()));
  if (err == cudaSuccess && Plan::kCtas > 1) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
  }
  return err;
}

// Whether the current device holds a cluster of the paired PW kernel (asked once per device):
// a partition whose GPCs cannot give two CTAs of this size SMs side by side would not, and there
// the slabs run unpaired.
// A launch of `blocks` CTAs of Plan, as clusters of two where `pair` (`attr` holds the cluster
// shape the configuration points to).
template <class Plan>
cudaLaunchConfig_t scan_config(int64_t blocks, bool pair, cudaStream_t stream, cudaLaunchAttribute& attr) {
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = dim3(static_cast<unsigned>(blocks));
  cfg.blockDim = dim3(Plan::kThreadsAll);
  cfg.dynamicSmemBytes = Plan::bytes();
  cfg.stream = stream;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = pair ? 2 : 1;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cfg.attrs = &attr;
  cfg.numAttrs = pair ? 1 : 0;
  return cfg;
}

bool pairs_fit() {
  static std::array<std::atomic<int>, 64> cache{};
  return asked_once_per_device(cache, [](int) {
    auto kernel = chunked_scan_kernel<true, 128, true, false, false, true, true>;
    if (prepare<128, false, true>(kernel) != cudaSuccess) return false;
    cudaLaunchAttribute attr{};
    const cudaLaunchConfig_t cfg = scan_config<ScanPlan<128, false, true>>(2, true, nullptr, attr);
    int n = 0;
    return cudaOccupancyMaxActiveClusters(&n, kernel, &cfg) == cudaSuccess && n > 0;
  });
}

template <bool BF16, int DK, bool DELTA, bool LOCAL, bool SERVING = false, bool PW = false, bool LSPLIT = true>
Status launch(const KernelArgs& a, cudaStream_t stream) {
  using Plan = ScanPlan<DK, LOCAL, PW>;
  auto kernel = chunked_scan_kernel<BF16, DK, DELTA, LOCAL, SERVING, PW, LSPLIT>;
  cudaError_t err = prepare<DK, LOCAL, PW>(kernel);
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (scan): ") + cudaGetErrorString(err));
  }
  // One CTA per (sequence, kv head), slab and segment; the local pass skips the last segment,
  // whose end state only the final pass produces.
  const int64_t blocks = window_state_lanes(a) * (a.p.dv / kSlab + (LOCAL ? DK / kSlab : 0)) *
                         (LOCAL ? a.nseg - 1 : a.nseg);
  if (blocks == 0) return Status::ok_status();
  // The PW form with two slabs per head runs them as a pair (chunked_pair.cuh): adjacent CTAs,
  // the two slabs of one lane, form a cluster.
  KernelArgs ka = a;
  ka.pair = PW && !LOCAL && a.pair && a.p.dv == 2 * kSlab && pairs_fit();
  cudaLaunchAttribute attr{};
  const cudaLaunchConfig_t cfg = scan_config<Plan>(blocks, ka.pair, stream, attr);
  err = cudaLaunchKernelEx(&cfg, kernel, ka);
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (scan): ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

// The PW form (the kernel's header) exists for d_k = 128 and is used where the build has it on
// the tensor cores' asynchronous path (wgmma): its four warpgroups need the register hand-over.
// The kernel's PTX level for the device is asked once per device.
template <bool BF16>
bool use_pw(const KernelArgs& a) {
  if (!a.pw || a.local || a.split || a.p.dk != 128 || a.p.q_per_kv() != 1) return false;
  static std::array<std::atomic<int>, 64> cache{};
  return asked_once_per_device(cache, [](int) {
    cudaFuncAttributes attr{};
    return cudaFuncGetAttributes(&attr, chunked_scan_kernel<BF16, 128, true, false, false, true, true>) == cudaSuccess &&
           attr.ptxVersion >= 90;
  });
}

template <bool BF16, int DK>
Status launch_rule(const KernelArgs& a, cudaStream_t stream) {
  if constexpr (DK == 128) {
    if (!a.local && a.head) return launch_head_scan(a, stream);
    if (use_pw<BF16>(a)) {
      if (a.serving) {
        return a.p.delta ? launch<BF16, DK, true, false, true, true>(a, stream)
                         : launch<BF16, DK, false, false, true, true>(a, stream);
      }
      return a.p.delta ? launch<BF16, DK, true, false, false, true>(a, stream)
                       : launch<BF16, DK, false, false, false, true>(a, stream);
    }
  }
  if (a.serving) return a.p.delta ? launch<BF16, DK, true, false, true>(a, stream) : launch<BF16, DK, false, false, true>(a, stream);
  if (a.local) {
    // The split matters to the local pass's chain only with the delta rule's K S.
    if (!a.p.delta) return launch<BF16, DK, false, true>(a, stream);
    return a.split ? launch<BF16, DK, true, true>(a, stream) : launch<BF16, DK, true, true, false, false, false>(a, stream);
  }
  return a.p.delta ? launch<BF16, DK, true, false>(a, stream) : launch<BF16, DK, false, false>(a, stream);
}

}  // namespace

// The final pass takes the most shared memory.
size_t scan_smem(int dk) { return dk == 128 ? ScanPlan<128, false>::bytes() : ScanPlan<64, false>::bytes(); }

namespace {
template <int DK, bool LOCAL>
int ctas_per_sm() {
  auto kernel = chunked_scan_kernel<true, DK, true, LOCAL, false, false, true>;
  int n = 0;
  if (prepare<DK, LOCAL>(kernel) != cudaSuccess ||
      cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, ScanPlan<DK, LOCAL>::kThreadsAll,
                                                    ScanPlan<DK, LOCAL>::bytes()) != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky: leave no trace for the next launch check
    return 0;
  }
  return n;
}
}  // namespace

bool scan_pairs_fit() { return pairs_fit(); }

int scan_ctas_per_sm(int dk, bool local) {
  if (dk == 128) return local ? ctas_per_sm<128, true>() : ctas_per_sm<128, false>();
  return local ? ctas_per_sm<64, true>() : ctas_per_sm<64, false>();
}

Status launch_scan(const KernelArgs& a, cudaStream_t stream) {
  if (a.p.B == 0) return Status::ok_status();
  const bool bf16 = a.p.act_dtype == LINATTN_BFLOAT16;
  if (a.p.dk == 128) return bf16 ? launch_rule<true, 128>(a, stream) : launch_rule<false, 128>(a, stream);
  return bf16 ? launch_rule<true, 64>(a, stream) : launch_rule<false, 64>(a, stream);
}

}  // namespace linattn::detail::cuda::chunked
