"""Every performance tunable of the core, in one place.

None of these changes a result: they only choose between equivalent code
paths (threads or not, histogram or sort, bucket or plain sort, interpreted
or compiled kernel).  The numba
kernels read them at compile time, so after editing a value used by a kernel
delete the numba cache (``__pycache__/*.nbi``) or set ``NUMBA_CACHE_DIR`` anew.

Imports nothing: every layer may read it.
"""

from __future__ import annotations

#: Elementwise binomial p-values: below this many tests per thread, a thread
#: pool costs more than it saves (:mod:`mtcert.stats.binomial`).
BINOMIAL_MIN_CHUNK = 1 << 16

#: SEGCERTIFY counting path: one large family is split over threads from this
#: many components per thread on (:mod:`mtcert.certify.segmentation`).
CERTIFY_MIN_CHUNK = 1 << 17

#: A family is histogrammed when it has at least (n + 1) / HIST_MIN_FILL
#: members (the O(n) histogram is then cheap next to the O(m) pass); smaller
#: families are sorted (:mod:`mtcert._kernels.certify`).
HIST_MIN_FILL = 8

#: Histograms of at least this many hits use four interleaved lanes, which
#: breaks the store-to-load dependency when neighbours share a hit count.
HIST_SPLIT_MIN = 1 << 14

#: :func:`mtcert.stats.multitest.adjust`: one family at least this large is sorted by
#: buckets (one counting pass on the leading key bits, then cache-sized sorts, with
#: scratch for half the keys).
BUCKET_MIN = 1 << 18
#: Group size whose ``np.sort`` stays in cache.
BUCKET_TARGET = 1 << 14

#: Holm–Šidák compares with its critical values (a ``pow`` each) on prefixes of
#: this many ranks, then four times as many, ..., up to the first failure.
HOLM_SIDAK_PREFIX = 1 << 10

#: Tiered kernels (:mod:`mtcert._jit`): a call whose largest array holds at
#: most this many elements may run the kernel's Python source instead of
#: compiling it ...
INTERPRET_MAX_SIZE = 1 << 14
#: ... until that kernel has spent this many seconds interpreted in this
#: process; then it is compiled (a compilation costs about as much).
INTERPRET_BUDGET_S = 0.25
