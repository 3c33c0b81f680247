/*
 * A fixed set of worker threads that run the parts of one job, the calling thread running part 0.
 * Between jobs a worker spins for a short while, then sleeps on a condition variable; the caller
 * waits for the parts the same way. One job at a time: a second caller (another JS thread using
 * the addon) finds the pool busy and computes its call alone.
 */
#pragma once
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace oeld {

class ThreadPool {
 public:
  /* Threads that compute a job, the caller included (at least 1). */
  int size() const { return static_cast<int>(workers_.size()) + 1; }

  /* Sets the thread count (caller included); only between jobs. */
  void resize(int threads);

  /*
   * Runs part(0) .. part(parts - 1), part 0 on the caller, the others on workers; returns when
   * all are done. Returns false without running anything when the pool is busy or parts exceeds
   * size().
   */
  bool run(int parts, const std::function<void(int)> &part);

 private:
  void loop(int id, unsigned seen);

  std::mutex busy_;
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)> *job_ = nullptr;
  int parts_ = 0;
  std::atomic<int> pending_{0};
  std::atomic<unsigned> generation_{0};
  int stopBelow_ = 1 << 30;  // workers with id >= this leave their loop
};

}  // namespace oeld
