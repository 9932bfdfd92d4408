"""mtcert: multiple testing for certified robustness.

Exact binomial tests, FWER / k-FWER / FDR procedures with adjusted p-values,
and the SEGCERTIFY family of certification algorithms (Fischer, Baader & Vechev,
ICML 2021).  The core never imports torch; see :mod:`mtcert_torch` for models.
"""

from mtcert.binomial import binom_test, clopper_pearson, greater_pvalue_table

__version__ = "0.1.0"

__all__ = ["__version__", "binom_test", "clopper_pearson", "greater_pvalue_table"]
