#include "thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace gf {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// How long an idle worker keeps looking for the next job before it sleeps. Consecutive ops of
// a training step come within a few microseconds of each other; a sleeping worker costs the
// next job a wake-up (a system call, and tens of microseconds until the worker runs).
constexpr auto kSpin = std::chrono::microseconds(50);

// The stall guard. A worker that holds a chunk and loses its core to another process for a
// time slice (milliseconds) makes the caller wait that long for a job of microseconds, and
// the chunks it took cannot be taken back. When a job took longer than the caller alone would
// have (its time per chunk times the chunks, plus one for the worker that wakes late), having
// waited for workers' chunks (at least kStallMin), the next jobs run on the calling thread
// alone for a while (kSoloMin), after which a job tries the workers again. A stall of a job
// begun soon after a spell ended (within kSoloRetry or the spell's length: a busy neighbour
// still holds the worker's core) doubles the next spell, up to kSoloMax; one long after starts
// from kSoloMin again (a virtual machine's vCPUs lose their cores now and then, an idle one's
// too: a window counted from the last stall, 1 s, kept the pool alone half the time there).
// A job that lasted kAbsentMin without any of the workers, spinning when it began, taking a
// chunk (one that runs takes a chunk within microseconds) counts the same way: they have no
// core, and the caller ran every chunk, paying for the split (a GEMM's blocks each pack their
// operands again) and gaining nothing. (A sleeping worker may just be slow to wake.) Results
// never depend on it (splits depend only on the shape and the thread count).
using Clock = std::chrono::steady_clock;
constexpr auto kStallMin = std::chrono::microseconds(100);
constexpr auto kAbsentMin = std::chrono::microseconds(200);
// A spinning worker sees a new job within a few microseconds; one that sees it later than
// kLate lost its core meanwhile, and is likely to lose it again while holding a chunk, which
// the caller would wait for: it leaves the job to the caller (an absence when the job is long).
constexpr auto kLate = std::chrono::microseconds(50);
constexpr auto kSoloMin = std::chrono::milliseconds(4);
constexpr auto kSoloMax = std::chrono::milliseconds(256);
constexpr auto kSoloRetry = std::chrono::milliseconds(100);

// The job word: generation (32 bits) | threads allowed (16 bits) | chunks not yet taken (16
// bits). One atomic word, so that a worker takes a chunk only of the job it looked at: once it
// holds one, that job cannot finish, and its parameters stay valid, until it reports it done.
constexpr std::uint64_t kMask16 = 0xffff;
inline std::uint32_t gen_of(std::uint64_t v) { return std::uint32_t(v >> 32); }
inline int threads_of(std::uint64_t v) { return int((v >> 16) & kMask16); }
inline int left_of(std::uint64_t v) { return int(v & kMask16); }

struct Pool {
  std::atomic<std::uint64_t> word{0};
  std::atomic<Clock::rep> published{0};  // when the current job was published (steady_clock)
  std::atomic<int> done{0};  // chunks of the current job finished
  // The current job; written before `word` publishes it, read after a chunk is taken.
  int chunks = 0;
  void (*body)(void*, int) = nullptr;
  void* ctx = nullptr;
  std::uint32_t generation = 0;    // the caller's (guarded by busy)
  std::atomic<bool> busy{false};   // a job is in flight
  std::atomic<int> sleepers{0};
  // Bit i: worker i sleeps (workers 1..63; later ones are not tracked, taken as awake). Jobs
  // of fewer threads than workers started leave the rest asleep: only the bits of the workers
  // a job uses tell whether it has to wake one.
  std::atomic<std::uint64_t> asleep{0};
  std::mutex mutex;                // for the condition variable, and for starting workers
  std::condition_variable wake;
  std::vector<std::thread> threads;
  std::atomic<int> started{0};
  // Per-thread setup for the workers (see pool_set_worker_setup): bumped on each change.
  std::atomic<unsigned> setup_version{0};
  std::atomic<void (*)(bool)> setup_fn{nullptr};
  std::atomic<bool> setup_arg{false};
  // The stall guard's state (guarded by busy).
  Clock::time_point solo_until{};
  Clock::duration solo_for{};
  // Counts for pool_stats (read from any thread), and the latest spell's length.
  std::atomic<long long> jobs{0}, solo_jobs{0}, stalls{0}, absences{0}, solo_spell_us{0};
  // pool_set_test_delay: a sleep before each chunk a worker takes, or before it looks at a job
  std::atomic<int> test_delay_us{0};
  std::atomic<bool> test_delay_before{false};
};

Pool& pool() {
  // Never destroyed: workers may still be sleeping on its condition variable at exit.
  static Pool* p = new Pool;
  return *p;
}

// Takes one chunk of job `gen`: its index, or -1 when that job has none left.
int take(Pool& P, std::uint32_t gen) {
  std::uint64_t v = P.word.load(std::memory_order_acquire);
  for (;;) {
    if (gen_of(v) != gen || left_of(v) == 0) return -1;
    if (P.word.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_acquire))
      return P.chunks - left_of(v);
  }
}

// Runs the chunks of job `gen` that are left, one at a time; returns how many it ran.
int run_taken(Pool& P, std::uint32_t gen, bool worker) {
  int ran = 0;
  for (int c; (c = take(P, gen)) >= 0; ++ran) {
    if (worker && !P.test_delay_before.load(std::memory_order_relaxed)) {
      if (int us = P.test_delay_us.load(std::memory_order_relaxed))
        std::this_thread::sleep_for(std::chrono::microseconds(us));
    }
    P.body(P.ctx, c);
    P.done.fetch_add(1, std::memory_order_release);
  }
  return ran;
}

void worker_main(int index) {  // index >= 1: the caller is thread 0 of every job
  Pool& P = pool();
  std::uint32_t seen = 0;
  unsigned setup_seen = 0;
  bool spun = false;  // the job at hand was found spinning (not by a wake-up)
  for (;;) {
    std::uint64_t v = P.word.load(std::memory_order_acquire);
    if (gen_of(v) != seen) {
      seen = gen_of(v);
      const bool late = spun && Clock::now().time_since_epoch().count() -
                                        P.published.load(std::memory_order_relaxed) >
                                    Clock::duration(kLate).count();
      spun = false;
      if (!late && index < threads_of(v) && left_of(v) > 0) {
        unsigned sv = P.setup_version.load(std::memory_order_acquire);
        if (sv != setup_seen) {
          setup_seen = sv;
          if (auto fn = P.setup_fn.load()) fn(P.setup_arg.load());
        }
        if (P.test_delay_before.load(std::memory_order_relaxed)) {
          if (int us = P.test_delay_us.load(std::memory_order_relaxed))
            std::this_thread::sleep_for(std::chrono::microseconds(us));
        }
        run_taken(P, seen, true);
      }
      continue;
    }
    const auto until = std::chrono::steady_clock::now() + kSpin;
    bool fresh = false;
    while (!fresh && std::chrono::steady_clock::now() < until) {
      for (int i = 0; i < 32 && !fresh; ++i) {
        cpu_relax();
        fresh = gen_of(P.word.load(std::memory_order_relaxed)) != seen;
      }
    }
    if (fresh) {
      spun = true;
      continue;
    }
    std::unique_lock<std::mutex> lock(P.mutex);
    const std::uint64_t bit = index < 64 ? std::uint64_t(1) << index : 0;
    P.sleepers.fetch_add(1, std::memory_order_seq_cst);
    P.asleep.fetch_or(bit, std::memory_order_relaxed);
    P.wake.wait(lock, [&] { return gen_of(P.word.load(std::memory_order_seq_cst)) != seen; });
    P.asleep.fetch_and(~bit, std::memory_order_relaxed);
    P.sleepers.fetch_sub(1, std::memory_order_relaxed);
  }
}

void ensure_workers(Pool& P, int n) {
  if (P.started.load(std::memory_order_acquire) >= n) return;
  std::lock_guard<std::mutex> lock(P.mutex);
  while (int(P.threads.size()) < n) {
    P.threads.emplace_back(worker_main, int(P.threads.size()) + 1);
    P.threads.back().detach();  // they live as long as the process
  }
  P.started.store(n, std::memory_order_release);
}

}  // namespace

void pool_run(int chunks, int threads, void (*body)(void*, int), void* ctx) {
  Pool& P = pool();
  // (Callers ask for a few chunks per thread: more than the word holds only with an absurd
  // thread count, run here then.)
  if (threads <= 1 || chunks <= 1 || chunks > int(kMask16) || threads > int(kMask16) ||
      P.busy.exchange(true, std::memory_order_acquire)) {
    for (int c = 0; c < chunks; ++c) body(ctx, c);
    return;
  }
  const Clock::time_point start = Clock::now();
  if (start < P.solo_until) {
    P.solo_jobs.fetch_add(1, std::memory_order_relaxed);
    for (int c = 0; c < chunks; ++c) body(ctx, c);
    P.busy.store(false, std::memory_order_release);
    return;
  }
  P.jobs.fetch_add(1, std::memory_order_relaxed);
  ensure_workers(P, threads - 1);
  P.chunks = chunks;
  P.body = body;
  P.ctx = ctx;
  P.done.store(0, std::memory_order_relaxed);
  const std::uint32_t gen = ++P.generation;
  P.published.store(start.time_since_epoch().count(), std::memory_order_relaxed);
  P.word.store(std::uint64_t(gen) << 32 | std::uint64_t(threads) << 16 | std::uint64_t(chunks),
               std::memory_order_seq_cst);
  const bool awake = !pool_asleep(threads);
  if (P.sleepers.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(P.mutex); }
    P.wake.notify_all();
  }
  const int mine = run_taken(P, gen, false);
  const Clock::time_point ran = Clock::now();
  // Only chunks that workers took are left: wait for those.
  for (int spins = 0; P.done.load(std::memory_order_acquire) < chunks; ++spins) {
    if (spins < 4096) cpu_relax();
    else std::this_thread::yield();
  }
  const Clock::time_point end = Clock::now();
  bool solo = false;
  if (mine < chunks) {
    const Clock::duration per_chunk = mine ? (ran - start) / mine : Clock::duration::zero();
    solo = end - ran > kStallMin && end - start > (chunks + 1) * per_chunk;
    if (solo) P.stalls.fetch_add(1, std::memory_order_relaxed);
  } else if (awake && end - start > kAbsentMin) {
    solo = true;
    P.absences.fetch_add(1, std::memory_order_relaxed);
  }
  if (solo) {
    const bool again = start - P.solo_until < std::max<Clock::duration>(P.solo_for, kSoloRetry);
    P.solo_for = again ? std::min<Clock::duration>(2 * P.solo_for, kSoloMax) : kSoloMin;
    P.solo_until = end + P.solo_for;
    P.solo_spell_us.store(
        std::chrono::duration_cast<std::chrono::microseconds>(P.solo_for).count(),
        std::memory_order_relaxed);
  }
  P.busy.store(false, std::memory_order_release);
}

void pool_set_worker_setup(void (*fn)(bool), bool arg) {
  Pool& P = pool();
  P.setup_fn.store(fn);
  P.setup_arg.store(arg);
  P.setup_version.fetch_add(1, std::memory_order_release);
}

int pool_workers() { return pool().started.load(std::memory_order_acquire); }

bool pool_asleep(int threads) {
  Pool& P = pool();
  const std::uint64_t used = threads >= 64 ? ~std::uint64_t(1) : ((std::uint64_t(1) << threads) - 2);
  return P.started.load(std::memory_order_relaxed) < threads - 1 ||
         (P.asleep.load(std::memory_order_relaxed) & used) != 0;
}

PoolStats pool_stats() {
  Pool& P = pool();
  return {P.jobs.load(), P.solo_jobs.load(), P.stalls.load(), P.absences.load(),
          P.solo_spell_us.load()};
}

void pool_set_test_delay(int microseconds, bool before_job) {
  pool().test_delay_before.store(before_job);
  pool().test_delay_us.store(microseconds);
}


}  // namespace gf
