// A small persistent thread pool owned by a context, so that per-call work (a decode step is a
// few microseconds) does not pay for thread creation. The calling thread takes part in the work.
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
  // num_threads counts the caller: 1 means no worker threads; 0 means hardware concurrency.
  explicit ThreadPool(int num_threads);
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

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;
  std::atomic<int64_t> next_{0};
  uint64_t generation_ = 0;
  int busy_ = 0;
  bool stop_ = false;
};

}  // namespace linattn::detail
