// Bounded asynchronous feature recorder (see recorder.h).
#include "runtime/monitor/recorder.h"

#include "base/log.h"

namespace edgelm::monitor {

AsyncRecorder::AsyncRecorder(RowSink sink, RecorderOptions options)
    : sink_(std::move(sink)), options_(options) {
  if (options_.max_queue == 0) options_.max_queue = 1;
  thread_ = std::thread([this] { run(); });
}

std::unique_ptr<AsyncRecorder> AsyncRecorder::over_store(std::unique_ptr<FeatureStore> store,
                                                         RecorderOptions options) {
  std::shared_ptr<FeatureStore> shared(std::move(store));
  auto rec = std::make_unique<AsyncRecorder>(
      [shared](const RequestFeatures& f) { return shared->add(f); }, options);
  rec->store_ = shared;
  return rec;
}

AsyncRecorder::~AsyncRecorder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool AsyncRecorder::submit(RequestFeatures f) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.submitted;
    if (stop_ || queue_.size() >= options_.max_queue) {
      if (stats_.dropped++ % 100 == 0) {
        EDGELM_LOG_WARN(
            "monitor: queue full ({} rows waiting), request features dropped ({} so far)",
            queue_.size(), stats_.dropped);
      }
      return false;
    }
    queue_.push_back(std::move(f));
  }
  cv_.notify_one();
  return true;
}

void AsyncRecorder::flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

RecorderStats AsyncRecorder::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void AsyncRecorder::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, everything written
    RequestFeatures f = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Status s = sink_ ? sink_(f) : Status::failed_precondition("monitor: no sink");
    lock.lock();
    busy_ = false;
    if (s.ok()) {
      ++stats_.written;
    } else {
      stats_.last_error = s.to_string();
      if (stats_.errors++ % 100 == 0) {
        EDGELM_LOG_WARN("monitor: a request's features were not stored ({} errors so far): {}",
                        stats_.errors, stats_.last_error);
      }
    }
    if (queue_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

}  // namespace edgelm::monitor
