#include "thread-pool.h"

namespace oeld {

void ThreadPool::resize(int threads) {
  std::lock_guard<std::mutex> busy(busy_);
  int want = threads < 1 ? 0 : threads - 1;
  if (want == static_cast<int>(workers_.size())) return;
  {
    std::lock_guard<std::mutex> l(m_);
    stopBelow_ = 0;
    generation_++;
  }
  wake_.notify_all();
  for (auto &t : workers_) t.join();
  workers_.clear();
  unsigned start;
  {
    std::lock_guard<std::mutex> l(m_);
    stopBelow_ = 1 << 30;
    start = generation_;
  }
  // Each worker starts from the generation current now: a job posted before it first takes the
  // lock is still one it has not seen.
  for (int i = 0; i < want; i++) workers_.emplace_back(&ThreadPool::loop, this, i + 1, start);
}

bool ThreadPool::run(int parts, const std::function<void(int)> &part) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (!busy.owns_lock() || parts > size()) return false;
  {
    std::lock_guard<std::mutex> l(m_);
    job_ = &part;
    parts_ = parts;
    pending_ = parts - 1;
    generation_++;
  }
  if (parts > 1) wake_.notify_all();
  part(0);
  std::unique_lock<std::mutex> l(m_);
  done_.wait(l, [this] { return pending_ == 0; });
  job_ = nullptr;
  return true;
}

void ThreadPool::loop(int id, unsigned seen) {
  for (;;) {
    const std::function<void(int)> *job;
    {
      std::unique_lock<std::mutex> l(m_);
      wake_.wait(l, [&] { return generation_ != seen; });
      seen = generation_;
      if (id >= stopBelow_) return;
      if (id >= parts_ || !job_) continue;
      job = job_;
    }
    (*job)(id);
    {
      std::lock_guard<std::mutex> l(m_);
      pending_--;
    }
    done_.notify_one();
  }
}

}  // namespace oeld
