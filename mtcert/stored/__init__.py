"""Stored counts: certify once on a model, decide many times without it.

Above :mod:`mtcert.certify` and :mod:`mtcert.sim` (the planner simulates the
oracle): :mod:`mtcert.stored.counts` is the ``.mtcounts`` file format
(:class:`~mtcert.stored.counts.CountsWriter`, :func:`~mtcert.stored.counts.read_counts`;
its frames and their checks in ``mtcert.stored._frames``),
:mod:`mtcert.stored.recertification` re-decides stored counts at other τ, α,
methods and k, and :mod:`mtcert.stored.planning` plans the number of testing
samples from a pilot.  No torch, no argument parsing.
"""
