// Chunked (WY-form) prefill on tensor cores (CHUNKED.md). The recurrent backend entry
// (src/cuda/linear_attention.cu) asks chunked_prefill_supports() and, when it says yes and the
// call is long enough, runs chunked_prefill() instead of the token-recurrent kernel.
#pragma once

#include <cstddef>

#include "core/backend.hpp"

namespace linattn::detail::cuda {

// True when the chunked path implements this call (dtypes, head dims, rule, decay kind).
bool chunked_prefill_supports(const LinearAttentionParams& p);
// Shared memory per block the chunked scan takes at key head dim dk (its prefetch stages and
// hand-over buffers; the prep takes less).
size_t chunked_prefill_smem_bytes(int dk);
// True when device_id grants a block chunked_prefill_smem_bytes(dk) (the opt-in limit, asked
// once per device): sm_90 parts (227 KB) do at both head dims, sm_80 (163 KB) at dk = 64 only,
// sm_86 / sm_89 (99 KB) at neither. Calls a device cannot host take the recurrent kernel.
bool chunked_prefill_fits_device(int dk, int device_id);
// CTAs of the scan's final pass, or of its local pass (segments), that one SM of the current
// device holds at once (0 when the device cannot be asked): one and two on sm_90.
int chunked_prefill_scan_ctas_per_sm(int dk, bool local_pass);
// Whether the current device holds a cluster of two final-pass CTAs, the two 64-column slabs of a
// value head that form P o Q K^T once per chunk between them (ChunkedOptions::pair_slabs): yes
// on sm_90; where not, the slabs run unpaired.
bool chunked_prefill_slab_pairs_fit();
// OK when it fits; otherwise LINATTN_ERROR_UNSUPPORTED naming both sizes and the device.
Status chunked_prefill_check_device(int dk, int device_id);
// Device workspace the chunked path needs for p (0 when unsupported).
size_t chunked_prefill_workspace_bytes(const LinearAttentionParams& p);
// Runs the chunked path asynchronously on e.stream; e.workspace has the bytes asked for.
Status chunked_prefill(const LinearAttentionParams& p, const Exec& e);

}  // namespace linattn::detail::cuda
