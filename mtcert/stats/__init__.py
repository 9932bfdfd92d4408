"""Statistics: exact binomial tests, multiple-testing procedures, certified radii.

The lowest public layer of :mod:`mtcert`.  Its modules import only numpy, scipy,
the compiled kernels (:mod:`mtcert._kernels` through :mod:`mtcert._jit`) and each
other; nothing here knows about certificates, stored counts or models.

- :mod:`mtcert.stats.binomial`: binomial tail p-values and Clopper–Pearson bounds;
- :mod:`mtcert.stats.families`: which tests form a family along an array's axes;
- :mod:`mtcert.stats.multitest`: FWER / k-FWER / FDR procedures (``adjust``) and the
  statsmodels-compatible ``multipletests``;
- :mod:`mtcert.stats.radius`: the one table from a noise model to its certified radius;
- :mod:`mtcert.stats.validation`: the argument checks every public function shares.
"""
