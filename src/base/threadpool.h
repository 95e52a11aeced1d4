// A fixed pool of worker threads for data-parallel loops. Threads are created once and reused:
// no per-op thread creation. The calling thread takes part in the work.
//
//   ThreadPool pool(4);
//   pool.parallel_for(rows, [&](size_t begin, size_t end, int thread) { ... });
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace edgelm {

class ThreadPool {
 public:
  // Range body: [begin, end) and the index of the thread running it (0 = caller).
  using RangeFn = std::function<void(size_t begin, size_t end, int thread)>;

  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Splits [0, n) into one contiguous chunk per thread (each a multiple of `grain` except the
  // last) and blocks until all are done. Small n runs inline on the caller.
  void parallel_for(size_t n, const RangeFn& fn, size_t grain = 1);

 private:
  void worker(int index);

  int num_threads_;
  std::vector<std::thread> threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;
  const RangeFn* job_ = nullptr;
  size_t job_n_ = 0;
  size_t job_grain_ = 1;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  std::atomic<int> spin_pending_{0};
};

}  // namespace edgelm
