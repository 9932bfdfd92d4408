"""pytest at the repository root: the plugin's doctests need torch.

Without torch (an install without the ``[torch]`` extra) the ``mtcert_torch``
package is not collected, as ``tests/torch`` is not; the core is tested as usual.
"""

import importlib.util

if importlib.util.find_spec("torch") is None:
    collect_ignore = ["mtcert_torch"]
