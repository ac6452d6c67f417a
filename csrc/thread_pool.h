// gradflow's worker threads: a small portable pool (std::thread, one condition variable) that
// runs a job split into chunks, the calling thread included.
//
// Why not a static split (OpenMP's, OpenBLAS's): on a machine where another process keeps a
// core busy, a thread that gets a fixed share of the work, or that every other thread waits
// for at a barrier, is descheduled for whole time slices, and the job takes as long as that
// thread's share at the speed it gets (a 2-thread step became 3-50x slower than one thread).
// Here the chunks are taken one at a time from a shared counter, and the caller only waits for
// chunks a worker has actually taken: a worker that wakes late finds no work left and the job
// has not waited for it. Idle workers spin briefly (the next op of a training step comes within
// microseconds), yielding their core to whoever else needs it, then sleep.
#pragma once

#include <cstdint>

namespace gf {

// Runs body(ctx, c) for every c in [0, chunks), each once, on at most `threads` threads (the
// calling thread and threads - 1 workers), and returns when all have run. Runs them all on the
// calling thread when the pool is in use by another job (a nested call, a second Python
// thread): concurrent jobs would only oversubscribe the cores. body must not throw.
void pool_run(int chunks, int threads, void (*body)(void* ctx, int chunk), void* ctx);

// Has every worker call fn(arg) before its next chunk, and workers started later before their
// first: for per-thread state such as the floating-point control word (flush-to-zero).
void pool_set_worker_setup(void (*fn)(bool), bool arg);

// Workers started so far (they start on a job's first use of them).
int pool_workers();

// Whether a job on `threads` threads would have to wake a worker (one of those it uses sleeps,
// or has not started): a wake-up costs tens of microseconds (a system call, an interrupt to an
// idle core), more than a small job gains from a second thread.
bool pool_asleep(int threads);

// Jobs split across threads, jobs run on the calling thread alone after a stall (see the
// stall guard in thread_pool.cpp), stalls detected, and jobs the workers took no part in
// (absences), since the process started; the latest solo spell's length (0 before the first).
struct PoolStats {
  long long jobs, solo_jobs, stalls, absences, solo_spell_us;
};
PoolStats pool_stats();

// For tests: workers sleep this long before each chunk they take (0: never), or with
// before_job before they look at a new job, as a worker kept off its core by another process
// would while it holds a chunk, or before it could take one.
void pool_set_test_delay(int microseconds, bool before_job = false);


}  // namespace gf
