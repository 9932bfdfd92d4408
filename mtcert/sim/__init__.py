"""Simulation: synthetic oracles, power studies and property-testing strategies.

Above :mod:`mtcert.certify` (it runs the algorithms on simulated counts):
:mod:`mtcert.sim.oracle` (the paper's synthetic oracles), :mod:`mtcert.sim.power`
(grids of power studies, local or on Dask), :mod:`mtcert.sim.testing`
(hypothesis strategies and an empirical error-rate checker) and
:mod:`mtcert.sim.hierarchy` (flat against hierarchical certification on an oracle).
No torch, no argument parsing.
"""
