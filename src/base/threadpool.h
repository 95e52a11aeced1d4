// A fixed pool of worker threads for data-parallel loops. Threads are created once and reused:
// no per-op thread creation. The calling thread takes part in the work. Between jobs, workers
// spin briefly (decode issues hundreds of small jobs per token, and a condition-variable
// wake-up costs tens of microseconds) and then sleep, so an idle pool uses no CPU.
//
//   ThreadPool pool(4);
//   pool.parallel_for(rows, [&](size_t begin, size_t end, int thread) { ... });
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
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
  // last) and blocks until all are done. Small n runs inline on the caller. Not reentrant:
  // one parallel_for at a time per pool.
  void parallel_for(size_t n, const RangeFn& fn, size_t grain = 1);

 private:
  void worker(int index);
  void run_chunk(int index);

  int num_threads_;
  std::vector<std::thread> threads_;
  // Job description, published by the release-store of generation_.
  const RangeFn* job_ = nullptr;
  size_t job_n_ = 0;
  size_t job_grain_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace edgelm
