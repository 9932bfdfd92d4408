"""The label conventions every certification algorithm shares.

This is the bottom of :mod:`mtcert.certify`: it imports nothing, and every
algorithm, metric and plugin that writes or reads labels takes
:data:`ABSTAIN` from here (re-exported as :data:`mtcert.ABSTAIN`).
"""

__all__ = ["ABSTAIN"]

#: Label returned where an algorithm abstains (the paper's ∅).  Real labels are >= 0.
ABSTAIN = -1
