#include "thread-pool.h"

#include <chrono>

namespace oeld {

namespace {

/*
 * How long a thread spins, watching a counter, before it sleeps on a condition variable. Waking a
 * sleeping thread takes 50-100 microseconds here, as long as a decoding step's whole matmul; the
 * calls of a training step or a decoding loop come far closer together than this.
 */
constexpr auto SPIN = std::chrono::microseconds(200);

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::this_thread::yield();
#endif
}

/* Spins until done() or SPIN has passed; returns done(). */
template <typename F>
bool spinUntil(F done) {
  auto until = std::chrono::steady_clock::now() + SPIN;
  for (int i = 0;; i++) {
    if (done()) return true;
    relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return done();
  }
}

}  // namespace

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
  if (!spinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
    std::unique_lock<std::mutex> l(m_);
    done_.wait(l, [this] { return pending_.load() == 0; });
  }
  std::lock_guard<std::mutex> l(m_);
  job_ = nullptr;
  return true;
}

void ThreadPool::loop(int id, unsigned seen) {
  for (;;) {
    const std::function<void(int)> *job;
    spinUntil([&] { return generation_.load(std::memory_order_acquire) != seen; });
    {
      std::unique_lock<std::mutex> l(m_);
      wake_.wait(l, [&] { return generation_.load() != seen; });
      seen = generation_.load();
      if (id >= stopBelow_) return;
      if (id >= parts_ || !job_) continue;
      job = job_;
    }
    (*job)(id);
    {
      std::lock_guard<std::mutex> l(m_);
      pending_.fetch_sub(1, std::memory_order_release);
    }
    done_.notify_one();
  }
}

}  // namespace oeld
