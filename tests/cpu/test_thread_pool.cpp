// The CPU thread pool: every item of every job runs exactly once, whether the workers are
// spinning for the next job, asleep after their spin ran out, or never spin at all.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/thread_pool.hpp"

namespace {

using linattn::detail::ThreadPool;

// Runs a job of n items on pool and checks each ran once, on a valid thread index.
void run_job_and_check(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::atomic<int> bad_index{0};
  pool.parallel_for(n, [&](int64_t i, int thread) {
    if (thread < 0 || thread >= pool.num_threads()) bad_index.fetch_add(1);
    hits[static_cast<size_t>(i)].fetch_add(1);
  });
  EXPECT_EQ(bad_index.load(), 0);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "item " << i << " of " << n;
}

class ThreadPoolSpin : public ::testing::TestWithParam<int32_t> {};

TEST_P(ThreadPoolSpin, BackToBackJobsRunEveryItemOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads, GetParam());
    ASSERT_EQ(pool.num_threads(), threads);
    for (int rep = 0; rep < 300; ++rep) run_job_and_check(pool, 1 + rep % 37);
  }
}

TEST_P(ThreadPoolSpin, JobsAfterTheWorkersFellAsleep) {
  ThreadPool pool(3, GetParam());
  for (int rep = 0; rep < 6; ++rep) {
    // Longer than any spin in this test: the workers are asleep on the condition variable.
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    run_job_and_check(pool, 64);
  }
}

TEST_P(ThreadPoolSpin, UnevenItemsAndTheCallerWaitingForTheWorkers) {
  // One slow item on whichever thread takes it: the caller may finish first and wait (spinning
  // or asleep) for the worker that holds it.
  ThreadPool pool(2, GetParam());
  for (int rep = 0; rep < 20; ++rep) {
    std::atomic<int> done{0};
    pool.parallel_for(4, [&](int64_t i, int) {
      if (i == rep % 4) std::this_thread::sleep_for(std::chrono::microseconds(300 + 100 * (rep % 3)));
      done.fetch_add(1);
    });
    EXPECT_EQ(done.load(), 4);
  }
}

TEST_P(ThreadPoolSpin, DestroysPromptlyWhileWorkersWait) {
  for (int rep = 0; rep < 20; ++rep) {
    ThreadPool pool(3, GetParam());
    if (rep % 2) run_job_and_check(pool, 8);  // workers spinning or asleep after a job
  }  // each destructor must wake and join them
}

INSTANTIATE_TEST_SUITE_P(Spin, ThreadPoolSpin, ::testing::Values(0, 50, ThreadPool::kDefaultSpinUs),
                         [](const ::testing::TestParamInfo<int32_t>& i) {
                           return "spin_us_" + std::to_string(i.param);
                         });

}  // namespace
