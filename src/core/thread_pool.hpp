// A small persistent thread pool owned by a context, so that per-call work (a decode step is a
// few microseconds) does not pay for thread creation. The calling thread takes part in the work.
//
// Waking a thread that sleeps on a condition variable costs a system call and a trip through
// the scheduler (tens of microseconds on a virtual machine, a sizeable part of a decode step),
// so each side spins briefly before it sleeps: workers for the next job (spin_us after their
// last one), the caller for the workers to finish. The spin is bounded; an idle pool sleeps.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace linattn::detail {

class ThreadPool {
 public:
  static constexpr int32_t kDefaultSpinUs = 200;

  // num_threads counts the caller: 1 means no worker threads; 0 means hardware concurrency.
  // spin_us: how long a thread spins for a change before it sleeps (0 = sleep at once).
  explicit ThreadPool(int num_threads, int32_t spin_us = kDefaultSpinUs);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(i, thread_index) for every i in [0, n), items handed out dynamically, and returns
  // when all are done. thread_index is in [0, num_threads()). Not reentrant.
  void parallel_for(int64_t n, const std::function<void(int64_t, int)>& fn);

 private:
  void worker_loop(int index);
  void run_items(int thread_index);

  // Spins until done() holds or spin_ns_ pass; returns done().
  template <class F>
  bool spin_until(F done) const;

  int64_t spin_ns_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<uint64_t> generation_{0};  // changed under mu_, read by spinning workers
  std::atomic<int> busy_{0};             // workers still running the current job
  std::atomic<bool> stopping_{false};    // set under mu_, read by spinning workers too
};

}  // namespace linattn::detail
