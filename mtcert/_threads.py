"""Run ``nogil`` numba kernels over chunks of a large array on a small thread pool.

mtcert's kernels never use numba's ``parallel=True``: its default OpenMP
threading layer is not fork-safe, and a user who forks worker processes
(multiprocessing's default on Linux) after calling mtcert would see them
terminated.  Instead the kernels release the GIL and the wrappers split the
work into contiguous chunks that the calling thread and a few pool threads
take in turn (dynamic scheduling: when another process keeps a core busy, the
calling thread simply does more of the chunks instead of waiting for it).

The pool is created on first use and re-created in a forked child (a child
inherits the pool object but not its threads).  The pool threads run each call's
chunks in a copy of the caller's :mod:`contextvars` context, so that settings
held per thread (the kernels' tier policy, :func:`mtcert._jit.policy`) hold for
the whole call.

Imports the standard library only.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["map_chunks", "workers_for"]

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_key = (-1, 0)  # (pid, threads) the pool was made for


def workers_for(size: int, min_chunk: int) -> int:
    """Threads worth using for ``size`` elements: one per ``min_chunk``, at most one per core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, size // min_chunk))


def _get_pool(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_key
    with _lock:
        pid = os.getpid()
        if _pool is None or _pool_key[0] != pid or _pool_key[1] < threads:
            if _pool is not None and _pool_key[0] == pid:
                _pool.shutdown(wait=False)  # a smaller pool of this process: let it go
            _pool = ThreadPoolExecutor(threads, thread_name_prefix="mtcert")
            _pool_key = (pid, threads)
        return _pool


def map_chunks(fn, size: int, workers: int, *, chunks_per_worker: int = 4) -> list:
    """Call ``fn(worker, lo, hi)`` for contiguous chunks ``[lo, hi)`` covering ``range(size)``.

    Parameters
    ----------
    fn : callable
        ``fn(worker, lo, hi)``; ``worker`` in ``range(workers)`` identifies the
        thread (no two calls with the same ``worker`` run at the same time, so
        it may index per-thread scratch space).  Should spend its time in a
        ``nogil`` kernel.
    size : int
        Number of elements.
    workers : int
        Threads to use, the calling one included (see :func:`workers_for`);
        with 1 everything runs in the calling thread as one chunk.
    chunks_per_worker : int, default 4
        Chunks per worker (more balance the load better, fewer cost less
        dispatch).

    Returns
    -------
    list
        ``fn``'s return values in chunk order.
    """
    if workers <= 1:
        return [fn(0, 0, size)]
    n_chunks = workers * chunks_per_worker
    bounds = [size * i // n_chunks for i in range(n_chunks + 1)]
    results = [None] * n_chunks
    ticket = itertools.count()  # next() on a count is atomic under the GIL

    def work(worker):
        while (i := next(ticket)) < n_chunks:
            results[i] = fn(worker, bounds[i], bounds[i + 1])

    pool = _get_pool(workers - 1)
    # one copy per helper: a context can be entered by one thread at a time
    futures = [pool.submit(contextvars.copy_context().run, work, w) for w in range(1, workers)]
    work(0)
    for f in futures:
        # a helper that has not started by now has nothing left to do; cancelling
        # it also avoids waiting on a pool that is busy (or is this very caller)
        if not f.cancel():
            f.result()
    return results
