// The final pass of the chunked scan on whole value heads (d_k = d_v = 128, the delta rules, one
// query head per state, no state split, sm_90a): one CTA per (sequence, state head, segment)
// instead of one per 64-column slab. Four warpgroups:
//   0, 1: the state chain of value columns 64 c .. 64 c + 63 (c = the warpgroup), each with its
//         own outputs. The slice of S is held transposed in float32 registers and every product
//         takes its A operand from registers:
//           (K S)^T = S^T K^T and (Q S)^T = S^T Q^T     A = S^T rounded to 16 bits
//           U^T = X^T (T diag(b))^T                     A = X^T = V^T - (K S)^T diag(L), hi + lo
//           S^T <- L_C S^T + (U diag(exp(G_C - G)))^T K
//           O^T = scale ((Q S)^T diag(L) + U^T (P o Q K^T)^T)
//         so neither the state nor U passes through shared memory: the outputs come out
//         transposed and go to memory through the warp's own small tile (stmatrix .trans).
//         The two chains are independent: while one waits for its products the other's run.
//   2:    P o Q K^T of each chunk (once for both chains), as hi + lo tiles in one of two buffers.
//   3:    loads K, Q, T diag(b), V (both slabs) and G of the coming chunks with cp.async.
// Against the slab form (chunked_scan.cu: one chain per SM, the outputs on a warpgroup of their
// own fed by hand-overs of S and U) each SM runs two chains side by side, Q K^T and P o Q K^T
// are formed once per head instead of once per slab, and K, Q, T and G are loaded once.
#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "core/dtype.hpp"
#include "cuda/chunked_layout.cuh"
#include "cuda/chunked_mma.cuh"
#include "cuda/chunked_scan_tiles.cuh"
#include "cuda/chunked_wgmma.cuh"
#include "cuda/cuda_common.cuh"

namespace linattn::detail::cuda::chunked {
namespace {

// Shared memory: kStages stages of K, Q ([kC][128] each), T diag(b) ([kC][kC]) and V ([kC][128]),
// all swizzled, then the stages' G (kC float32 each), then two P o Q K^T buffers of hi and lo
// tiles ([kC][kC] each, kPTile), then each chain warp's output tile ([kC][16]), then the
// mbarriers: full and empty per stage, pfull and pfree per P buffer.
struct HeadPlan {
  static constexpr int kDK = 128, kDV = 128;
  static constexpr int kOffQ = kC * kDK;
  static constexpr int kOffT = 2 * kC * kDK;
  static constexpr int kOffV = kOffT + kC * kC;
  static constexpr int kStage = kOffV + kC * kDV;
  static constexpr int kPElems = 2 * 2 * kC * kC;
  static constexpr int kOutElems = 8 * kC * 16;
  static constexpr int kBarriers = 2 * kStages + 2 * 2;
  static constexpr int kThreads = 4 * 128;
  // Threads that read a stage and release it: both chains and the P o Q K^T warpgroup.
  static constexpr int kReaders = 3 * 128;
  // Registers: the launch gives 128 per thread; the loads keep 40 and P o Q K^T 72, the chains
  // take 200 each (ptxas spills nothing at this split; at 184 or 192 the chains spilled).
  static constexpr int kChainRegs = 200, kPRegs = 72, kLoadRegs = 40;
  static_assert(2 * kChainRegs + kPRegs + kLoadRegs == 4 * 128, "register budget");
  static constexpr size_t bytes() {
    return (kStages * static_cast<size_t>(kStage + 2 * kC) + kPElems + kOutElems) * 2 + kBarriers * sizeof(uint64_t);
  }
  static_assert(kStage * 2 % 1024 == 0, "swizzled tiles on 1024-byte boundaries");
};
static_assert(HeadPlan::bytes() <= 227 * 1024, "one CTA per SM on sm_90");

// Where (token tt, half hv of the warp's 16 value columns) lies in a warp's [kC][16] output tile:
// the halves swap every four tokens, so that the eight 16-byte rows an stmatrix writes fall in
// distinct banks.
__device__ __forceinline__ int out_off(int tt, int hv) { return tt * 16 + ((hv ^ ((tt >> 2) & 1)) << 3); }

template <bool BF16, bool SERVING>
__global__ void __launch_bounds__(HeadPlan::kThreads, 1) chunked_head_kernel(const KernelArgs args) {
  const LinearAttentionParams& p = args.p;
  using Plan = HeadPlan;
  constexpr int DK = Plan::kDK, NS = DK / 64, KS = DK / 16;
  constexpr int kStage = Plan::kStage;

  extern __shared__ __align__(1024) unsigned char smem[];
  uint16_t* stages = reinterpret_cast<uint16_t*>(smem);
  float* gstage = reinterpret_cast<float*>(stages + kStages * kStage);
  uint16_t* Pbuf = reinterpret_cast<uint16_t*>(gstage + kStages * kC);  // [2][hi, lo][kC][kC]
  uint16_t* Obuf = Pbuf + Plan::kPElems;                                 // [8 warps][kC][16]
  // full[s]: stage s loaded (the loading warpgroup's threads arrive once their copies landed);
  // empty[s]: stage s read (both chains and the P o Q K^T warpgroup); pfull[b]: P o Q K^T of the
  // chunk in buffer b written; pfree[b]: both chains done with it.
  uint64_t* full = reinterpret_cast<uint64_t*>(Obuf + Plan::kOutElems);
  uint64_t* empty = full + kStages;
  uint64_t* pfull = empty + kStages;
  uint64_t* pfree = pfull + 2;

  const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int wg = w >> 2, wr = w & 3;
  const int row = 16 * wr + g;  // rows row and row + 8 of the chunk products (accumulator layout)
  // What this CTA walks (Walk, chunked_scan_tiles.cuh).
  const SeqTable tab{args.table, args.ix.N};
  Walk wk;
  if constexpr (!SERVING) {
    const int64_t heads = p.B * p.Hkv;
    dense_walk<DK>(args, blockIdx.x % heads, static_cast<int>(blockIdx.x / heads), args.prefix, wk);
    if (args.nseg > 1) {
      // The segment slots: written by the combine, or for prefix segments by the prep (slot 0).
      wk.init_f = args.seg_state + (wk.bh * args.nseg + (args.prefix ? 0 : wk.seg)) * DK * p.dv;
      wk.init_p = nullptr;
    }
  } else {
    if (!serving_walk<DK>(args, tab, static_cast<int>(blockIdx.x % p.Hkv), blockIdx.x / p.Hkv, wk)) return;
  }
  const int64_t b = wk.b, pbeg = wk.pbeg, cbeg = wk.cbeg, cend = wk.cend, rec0 = wk.rec0,
                tbase = wk.tbase, tok_end = wk.tok_end, seq_n = wk.seq_n, seq_len = wk.seq_len;
  const int h = wk.h, seg = wk.seg;

  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full + s, 128);
      mbar_init(empty + s, Plan::kReaders);
    }
    for (int i = 0; i < 2; ++i) {
      mbar_init(pfull + i, 128);
      mbar_init(pfree + i, 256);
    }
  }
  __syncthreads();

  if (wg == 3) {
    // The loads: chunk cl into stage i % kStages once its previous chunk was released; the
    // chunks before a prefix segment need no Q.
    reg_dealloc<Plan::kLoadRegs>();
    const int lt = tid - 384;
    const uint16_t* kbase = static_cast<const uint16_t*>(p.k) + b * p.k_sb + p.key_head(h) * DK;
    const uint16_t* qbase = static_cast<const uint16_t*>(p.q) + b * p.q_sb + p.query_head(h, 0) * DK;
    const uint16_t* vbase = static_cast<const uint16_t*>(p.v) + b * p.v_sb + h * p.dv;
    int s = 0;
    for (int64_t cl = pbeg, i = 0; cl < cend; ++cl, ++i) {
      if (i >= kStages) mbar_wait(empty + s, static_cast<uint32_t>((i / kStages - 1) & 1));
      const int64_t t0 = tbase + cl * kC;
      const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
      const int64_t rec = rec0 + (SERVING && args.time_major ? tab.off(cl) : cl);
      uint16_t* st = stages + s * kStage;
      load_tile<DK, 128, true>(st, kbase + t0 * p.k_st, p.k_st, n, args.vec_in, lt);
      load_tile<kC, 128, true, true>(st + Plan::kOffT, args.t + rec * kC * kC, kC, kC, true, lt);
      load_tile<Plan::kDV, 128, true>(st + Plan::kOffV, vbase + t0 * p.v_st, p.v_st, n, args.vec_in, lt);
      if (cl >= cbeg) load_tile<DK, 128, true>(st + Plan::kOffQ, qbase + t0 * p.q_st, p.q_st, n, args.vec_in, lt);
      if (lt < kC / 4) cp_async16(gstage + s * kC + 4 * lt, args.g + rec * kC + 4 * lt, true);
      // Unaligned rows were stored synchronously: the arrival releases them.
      mbar_track_cp_async(full + s);
      mbar_arrive(full + s);
      s = s + 1 == kStages ? 0 : s + 1;
    }
    cp_async_wait_all();
    return;
  }

  if (wg == 2) {
    // P o Q K^T of chunk i to buffer i % 2 once both chains are done with chunk i - 2's; the
    // stage is released as soon as Q K^T is complete and G is in registers. The blocks above
    // the diagonal are zeros in every chunk: written once here.
    reg_dealloc<Plan::kPRegs>();
    for (int bsel = 0; bsel < 2; ++bsel) {
      for (int part = 0; part < 2; ++part) {
        uint16_t* P = Pbuf + (2 * bsel + part) * kC * kC;
#pragma unroll
        for (int kk = 0; kk < 4; ++kk) {
          if (kk <= wr) continue;
#pragma unroll
          for (int q = 0; q < 4; ++q) *reinterpret_cast<uint32_t*>(P + p_off(row, kk, q)) = 0u;
        }
      }
    }
    int s = 0;
    uint32_t phase = 0;
    skip_chunks(cbeg - pbeg, full, empty, s, phase);
    for (int64_t cl = cbeg, i = 0; cl < cend; ++cl, ++i) {
      const uint16_t* st = stages + s * kStage;
      const float* Gs = gstage + s * kC;
      const int bsel = static_cast<int>(i & 1);
      uint16_t* P = Pbuf + bsel * 2 * kC * kC;
      mbar_wait(full + s, phase);
      proxy_fence();
      float qk[8][4], grow[2];
      float2 gcol[8];
      qk_with_gates<BF16, DK>(qk, st + Plan::kOffQ, st, Gs, row, grow, gcol);
      mbar_arrive(empty + s);
      if (i >= 2) mbar_wait(pfree + bsel, static_cast<uint32_t>(((i >> 1) - 1) & 1));
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        if (kk > wr) continue;
        uint32_t ph[4], pl[4];
        if (kk < wr) {
          p_step<BF16, false>(qk, gcol, grow, row, kk, ph, pl);
        } else {
          p_step<BF16, true>(qk, gcol, grow, row, kk, ph, pl);
        }
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int o = p_off(row, kk, q);
          *reinterpret_cast<uint32_t*>(P + o) = ph[q];
          *reinterpret_cast<uint32_t*>(P + kC * kC + o) = pl[q];
        }
      }
      proxy_fence();
      mbar_arrive(pfull + bsel);
      next_stage(s, phase);
    }
    return;
  }

  // The chains: warpgroup c walks value columns vcol .. vcol + 63.
  reg_alloc<Plan::kChainRegs>();
  const int vcol = wg * kSlab;
  const StateMap sm{row, 2 * t4};
  float accS[NS][8][4];
  if (wk.init_f) {
    load_state(accS, wk.init_f, LINATTN_FLOAT32, p.dv, sm, vcol);
  } else if (wk.init_p) {
    load_state(accS, wk.init_p, wk.init_dt, wk.init_sk, sm, vcol);
  } else {
    for_state<NS>(sm, 0, 0, [&](int hf, int j, int e, int64_t) { accS[hf][j][e] = 0.f; });
  }
  uint32_t sh[KS][4];
  const auto state_frags = [&]() {
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) acc_frag<BF16>(accS[kk >> 2], kk & 3, sh[kk]);
  };
  state_frags();
  const int voff = swz_off(frag_t_offset(kStaged));
  uint16_t* ob = Obuf + w * kC * 16;
  uint16_t* obase = static_cast<uint16_t*>(p.out) + b * p.o_sb + p.output_head(h, 0) * p.dv + vcol + 16 * wr;
  int s = 0;
  uint32_t phase = 0;
  const int64_t npre = cbeg - pbeg;
  // (K S)^T of a chunk is issued at the end of the chunk before, as soon as its state is known,
  // so that it runs while that chunk's outputs are stored: more products in flight where every
  // SM runs a CTA (8 x 8192 5% faster). Serving calls issued it with (Q S)^T until their long
  // sequences were cut into prefix segments (the varlen row was 9% slower with the early issue,
  // its time then a lone CTA's tail; with the cuts 5% faster).
  float au[8][4];
  const auto issue_ks = [&](const uint16_t* Ks) {
    wg_begin(au);
    const BTile<true> bk(Ks, kStaged);
#pragma unroll
    for (int kk = 0; kk < KS; ++kk) wg_gemm_ra<BF16>(au, sh[kk], bk, il(0, 16 * kk, kStaged), kk > 0);
  };
  if (pbeg < cend) {
    mbar_wait(full, 0);
    proxy_fence();
    issue_ks(stages);
    wg_issued();
  }
  for (int64_t cl = pbeg, i = 0; cl < cend; ++cl, ++i) {
    const uint16_t* st = stages + s * kStage;
    const uint16_t* Ks = st;
    const uint16_t* Qs = st + Plan::kOffQ;
    const uint16_t* Tbs = st + Plan::kOffT;
    const uint16_t* Vs = st + Plan::kOffV + il(0, vcol, kStaged);
    const float* Gs = gstage + s * kC;
    const int64_t io = i - npre;  // the chunk's index among those with outputs
    const bool out = io >= 0;
    const int bsel = static_cast<int>(io & 1);
    const uint32_t bpar = static_cast<uint32_t>((io >> 1) & 1);
    // (Q S)^T from the state's fragments ((K S)^T is under way).
    float ao[8][4];
    if (out) {
      wg_begin(ao);
      const BTile<true> bq(Qs, kStaged);
#pragma unroll
      for (int kk = 0; kk < KS; ++kk) wg_gemm_ra<BF16>(ao, sh[kk], bq, il(0, 16 * kk, kStaged), kk > 0);
    }
    wg_issued();
    const float gend = Gs[kC - 1];
    const float lend = exp_ftz(gend);
    wg_complete();
    wg_done(au);
    wg_done(ao);
    // X^T = V^T - (K S)^T diag(L) as hi + lo A fragments; (Q S)^T diag(L) in place.
    uint32_t xh[4][4], xl[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      uint32_t vt[4];
      ldsm_x4_t(vt, Vs + voff + il(16 * kk, 0, kStaged));
#pragma unroll
      for (int j = 2 * kk; j < 2 * kk + 2; ++j) {
        const float2 gc = *reinterpret_cast<const float2*>(Gs + 8 * j + 2 * t4);
        const float l0 = exp_ftz(gc.x), l1 = exp_ftz(gc.y);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const uint32_t v = vt[2 * (j & 1) + (e >> 1)];
          const float x = half_as_float<BF16>(v, e & 1);
          au[j][e] = x - (e & 1 ? l1 : l0) * au[j][e];
          ao[j][e] *= e & 1 ? l1 : l0;
        }
      }
      acc_frag<BF16>(au, kk, xh[kk]);
      acc_frag_lo<BF16>(au, kk, xh[kk], xl[kk]);
    }
    // U^T = X^T (T diag(b))^T: T diag(b) as the K-major B operand.
    float uu[8][4];
    wg_begin(uu);
    const BTile<true> bt(Tbs, kStaged);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wg_gemm_ra<BF16>(uu, xh[kk], bt, il(0, 16 * kk, kStaged), kk > 0);
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wg_gemm_ra<BF16>(uu, xl[kk], bt, il(0, 16 * kk, kStaged), true);
    wg_issued();
    // While U is on the tensor cores: the decay of the state.
#pragma unroll
    for (int hf = 0; hf < NS; ++hf) {
#pragma unroll
      for (int j = 0; j < 8; ++j) {
#pragma unroll
        for (int e = 0; e < 4; ++e) accS[hf][j][e] *= lend;
      }
    }
    wg_complete();
    wg_done(uu);
    // (U diag(exp(G_C - G)))^T for the update, U^T for the outputs, as A fragments (G read
    // again from the stage rather than kept from X: fewer live registers while U runs).
    uint32_t uf[4][4], ut[4][4];
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int jj = 0; jj < 2; ++jj) {
        const int j = 2 * kk + jj;
        const float2 gc = *reinterpret_cast<const float2*>(Gs + 8 * j + 2 * t4);
        const float f0 = exp_ftz(gend - gc.x), f1 = exp_ftz(gend - gc.y);
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          uf[kk][2 * jj + hh] = pack2<BF16>(uu[j][2 * hh] * f0, uu[j][2 * hh + 1] * f1);
        }
      }
      acc_frag<BF16>(uu, kk, ut[kk]);
    }
    // S^T <- exp(G_C) S^T + (U diag(exp(G_C - G)))^T K: K as the N-major B operand.
#pragma unroll
    for (int hf = 0; hf < NS; ++hf) wg_begin(accS[hf]);
    const BTile<false> bkn(Ks, kStaged);
#pragma unroll
    for (int hf = 0; hf < NS; ++hf) {
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) wg_gemm_ra<BF16>(accS[hf], uf[kk], bkn, il(16 * kk, 64 * hf, kStaged));
    }
    wg_issued();
    if (out) {
      // O^T += U^T (P o Q K^T)^T: P o Q K^T (rows: queries) as the K-major B operand, hi and lo.
      mbar_wait(pfull + bsel, bpar);
      const uint16_t* P = Pbuf + bsel * 2 * kC * kC;
      wg_begin(ao);
      const BTile<true> bp(P, kPTile);
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) wg_gemm_ra<BF16>(ao, ut[kk], bp, il(0, 16 * kk, kPTile));
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) wg_gemm_ra<BF16>(ao, ut[kk], bp, kC * kC + il(0, 16 * kk, kPTile));
    }
    // (An empty group without outputs: the wait below is the same in both cases.)
    wg_issued();
    wg_complete_prior();
#pragma unroll
    for (int hf = 0; hf < NS; ++hf) wg_done(accS[hf]);
    // Every read of the stage by this warpgroup is complete.
    mbar_arrive(empty + s);
    state_frags();
    {
      // The next chunk's (K S)^T (on the last chunk a product of this stage that nobody reads,
      // so that no wgmma stands in a branch).
      int sn = s;
      uint32_t pn = phase;
      next_stage(sn, pn);
      const bool more = cl + 1 < cend;
      if (more) {
        mbar_wait(full + sn, pn);
        proxy_fence();
      }
      issue_ks(more ? stages + sn * kStage : st);
      wg_issued();
    }
    if (out) {
      wg_complete_prior();
      wg_done(ao);
      mbar_arrive(pfree + bsel);
      // O^T (the warp's 16 value columns x the chunk's tokens) to the warp's tile transposed,
      // then whole 16-byte pieces of its rows to the output: piece k of a lane is token
      // lane / 2 + 16 k, half lane % 2.
      const int64_t t0 = tbase + cl * kC;
      const int n = static_cast<int>(tok_end - t0 < kC ? tok_end - t0 : kC);
      __syncwarp();
      const int mi = lane >> 3;
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        uint32_t f[4];
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          const int j = 2 * kk + (q >> 1), e = 2 * (q & 1);
          f[q] = pack2<BF16>(p.scale * ao[j][e], p.scale * ao[j][e + 1]);
        }
        stsm_x4_t(f, ob + out_off(16 * kk + 8 * (mi >> 1) + (lane & 7), mi & 1));
      }
      __syncwarp();
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const int tt = (lane >> 1) + 16 * k, hv = lane & 1;
        if (tt >= n) continue;
        uint32_t v[4];
        asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                     : "r"(smem_addr(ob + out_off(tt, hv)))
                     : "memory");
        store_out8(obase + (t0 + tt) * p.o_st + 8 * hv, v, args.vec_out16, args.vec_out);
      }
    }
    if constexpr (SERVING) store_checkpoint(accS, args, cl, cbeg, seq_n, seq_len, h, sm, vcol);
    next_stage(s, phase);
  }
  wg_complete();
  wg_done(au);
  // Only the last segment's end state leaves the window.
  if (seg + 1 == args.nseg && (!SERVING || wk.fin_p || wk.fin_f)) {
    if (wk.fin_p) {
      store_state(accS, wk.fin_p, p.present_dtype, p.pres_sk, sm, vcol);
    } else {
      store_state(accS, wk.fin_f, LINATTN_FLOAT32, p.dv, sm, vcol);
    }
  }
}

template <bool BF16, bool SERVING>
Status launch(const KernelArgs& a, cudaStream_t stream) {
  auto kernel = chunked_head_kernel<BF16, SERVING>;
  constexpr size_t bytes = HeadPlan::bytes();
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (head scan): ") + cudaGetErrorString(err));
  }
  // One CTA per (sequence, state head) and segment.
  const int64_t blocks = window_state_lanes(a) * a.nseg;
  if (blocks == 0) return Status::ok_status();
  kernel<<<static_cast<unsigned>(blocks), HeadPlan::kThreads, bytes, stream>>>(a);
  err = cudaGetLastError();
  if (err != cudaSuccess) {
    return Status(LINATTN_ERROR_DEVICE, std::string("chunked prefill (head scan): ") + cudaGetErrorString(err));
  }
  return Status::ok_status();
}

// Whether the build runs the kernel on the tensor cores' asynchronous path on the current device
// (its PTX level, asked once per device): the register hand-over it needs is sm_90a's.
template <bool BF16>
bool built_for_device() {
  static std::array<std::atomic<int>, 64> cache{};
  return asked_once_per_device(cache, [](int) {
    cudaFuncAttributes attr{};
    return cudaFuncGetAttributes(&attr, chunked_head_kernel<BF16, false>) == cudaSuccess && attr.ptxVersion >= 90;
  });
}

}  // namespace

bool head_pass_applies(const LinearAttentionParams& p, bool split) {
  if (split || !p.delta || p.dk != 128 || p.dv != 128 || p.q_per_kv() != 1) return false;
  if (p.act_dtype != LINATTN_BFLOAT16 && p.act_dtype != LINATTN_FLOAT16) return false;
  return p.act_dtype == LINATTN_BFLOAT16 ? built_for_device<true>() : built_for_device<false>();
}

Status launch_head_scan(const KernelArgs& a, cudaStream_t stream) {
  if (a.serving) return a.p.act_dtype == LINATTN_BFLOAT16 ? launch<true, true>(a, stream) : launch<false, true>(a, stream);
  return a.p.act_dtype == LINATTN_BFLOAT16 ? launch<true, false>(a, stream) : launch<false, false>(a, stream);
}

}  // namespace linattn::detail::cuda::chunked
