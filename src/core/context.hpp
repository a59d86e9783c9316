// The context behind the opaque linattn_context handle of the C ABI: which backend runs, on
// which device and stream, with which CPU thread pool and which device workspace.
#pragma once

#include <cstddef>
#include <memory>

#include "core/backend.hpp"
#include "core/thread_pool.hpp"
#include "linattn/linattn.h"

struct linattn_context {
  linattn_backend backend = LINATTN_BACKEND_CPU;
  int device_id = 0;
  void* stream = nullptr;  // cudaStream_t; nullptr = the legacy default stream
  // CPU and reference backends: the threads of every call (the caller counts as one).
  std::unique_ptr<linattn::detail::ThreadPool> pool;
  // CUDA backend: device scratch memory, grown only when a call needs more than is reserved,
  // so that steady-state calls allocate nothing (and can be captured in a graph).
  void* workspace = nullptr;
  size_t workspace_bytes = 0;

  linattn_context() = default;
  linattn_context(const linattn_context&) = delete;
  linattn_context& operator=(const linattn_context&) = delete;
  ~linattn_context() {
    if (workspace) linattn::detail::cuda::device_free(device_id, workspace);
  }

  // Makes the workspace at least `bytes` large. Growing drops the old block first so that peak
  // device memory stays at the new size.
  linattn::detail::Status ensure_workspace(size_t bytes) {
    if (bytes <= workspace_bytes) return linattn::detail::Status::ok_status();
    if (workspace) linattn::detail::cuda::device_free(device_id, workspace);
    workspace = nullptr;
    workspace_bytes = 0;
    void* p = nullptr;
    linattn::detail::Status s = linattn::detail::cuda::device_alloc(device_id, bytes, &p);
    if (!s.ok()) return s;
    workspace = p;
    workspace_bytes = bytes;
    return s;
  }

  linattn::detail::Exec exec() const {
    linattn::detail::Exec e;
    e.pool = pool.get();
    e.stream = stream;
    e.device_id = device_id;
    e.workspace = workspace;
    e.workspace_bytes = workspace_bytes;
    return e;
  }
};
