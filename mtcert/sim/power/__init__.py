"""Power studies on synthetic oracles: grids -> tidy DataFrames (paper §6.1, App. B).

A *grid* is the Cartesian product of the oracle parameters (``N``, ``n_bad``,
``gamma``), the sample sizes (``n0``, ``n``), the certification parameters
(``alpha``, ``tau``), the error budget ``budget`` and the methods.  Each
combination is simulated ``reps`` times on a :class:`~mtcert.sim.oracle.BinaryOracle`
(or on any :class:`~mtcert.sim.oracle.Oracle` given as ``oracle=``) and summarised
in one row of a :class:`pandas.DataFrame`.

Methods
-------
``"jointclass"``
    JOINTCLASS (paper §4): Cohen et al.'s CERTIFY on the whole label vector.
``"indivclass"``
    INDIVCLASS (paper §4): CERTIFY per component at ``alpha / N``; one
    abstention abstains everything.
``"segcertify-<adjust method>"``
    SEGCERTIFY (Algorithm 2) with any :func:`mtcert.stats.multitest.adjust` method,
    e.g. ``"segcertify-holm"``, ``"segcertify-bonferroni"``.  k-FWER methods
    (``"segcertify-generalized-holm"``, ...) take an error budget ``b`` and run
    with ``k = b + 1`` (paper App. B.2).

The certification itself is done by :func:`mtcert.certify.segmentation.segcertify_hits`,
:func:`mtcert.certify.cohen.indivclass_hits` and :func:`mtcert.certify.cohen.jointclass_hits`;
this package only simulates the oracle, batches repetitions and keeps the books.

Modules
-------
:mod:`~mtcert.sim.power.grid`
    methods, error budgets, grid expansion into scenarios.
:mod:`~mtcert.sim.power.simulation`
    one scenario: oracle draws, certification, one row per method.
:mod:`~mtcert.sim.power.execution`
    :func:`run_grid` on threads (default), processes or any executor.
:mod:`~mtcert.sim.power.presets`
    the paper's figures as named grids; :mod:`~mtcert.sim.power.smoothing` App. B.1.

Result columns
--------------
``method, budget_spec, budget, gamma, N, n_bad, n0, n, alpha, tau, reps``
    the grid point (``n_bad``: the oracle's bad components; ``budget``: the error
    budget ``b`` resolved for this ``N``; ``budget_spec``: as requested).
    ``gamma`` and ``n_bad`` are NaN when ``oracle=`` gave one fixed oracle.
``certified_rate``
    mean over repetitions of the fraction of certified (non-abstained)
    components — the y-axis of the paper's Figs. 2, 5 and 6.
``stderr``
    its standard error (sample standard deviation of the per-repetition
    fractions over ``sqrt(reps)``).
``certified_correct_rate``
    mean fraction of components certified *and* equal to the true label.
``false_certified_rate``
    mean fraction of components whose certificate is false: SEGCERTIFY
    certified a label whose true probability is ``<= tau``; CERTIFY-based
    methods claimed a lower bound above the true probability.  JOINTCLASS makes
    one claim for all ``N`` components, so a false joint claim counts ``N``.
``type1_errors``
    number of repetitions in which the method's guarantee failed, i.e. the
    event whose probability it promises to keep ``<= alpha``: at least
    ``budget + 1`` false components (FWER / k-FWER), a false joint claim
    (JOINTCLASS), or any false component claim (INDIVCLASS).  FDR methods
    promise less (a bound on the expected false fraction); for them this column
    still counts repetitions with any false certificate.
``runtime``
    seconds spent on this row: its share of the oracle simulation plus its
    certification calls.

Reproducibility
---------------
Every *scenario* (``N, n_bad, gamma, n0, n``) draws from its own
``numpy.random.SeedSequence(seed, spawn_key=...)`` whose key is derived from the
scenario's parameters, and all methods of a scenario share the same draws
(common random numbers; JOINTCLASS uses a separate child stream).  Results
therefore do not depend on the executor, the number of workers, the order of
completion, threads versus processes, or on what else is in the grid.  Repetitions are simulated in
batches whose size depends only on ``N`` and ``reps``.

References
----------
.. [1] M. Fischer, M. Baader, M. Vechev, "Scalable Certified Segmentation via
   Randomized Smoothing", ICML 2021, §4, §6.1 and App. B.
.. [2] E. L. Lehmann, J. P. Romano, "Generalizations of the familywise error
   rate", Ann. Statist. 33 (2005).
"""

from mtcert.sim.power.execution import BACKENDS, run_grid
from mtcert.sim.power.grid import method_names
from mtcert.sim.power.presets import PRESETS, Preset, run_preset
from mtcert.sim.power.simulation import COLUMNS
from mtcert.sim.power.smoothing import smooth

__all__ = [
    "BACKENDS",
    "COLUMNS",
    "PRESETS",
    "Preset",
    "method_names",
    "run_grid",
    "run_preset",
    "smooth",
]
