"""Tiered execution of the numba kernels: small calls run as Python until compiling pays.

Compiling a kernel costs a fixed 0.1–1 s (and about 0.5 s more for the first
kernel of a process), however small the input; running the same kernel's
Python source on a thousand p-values takes milliseconds.  So a kernel declared
with :func:`tiered` (at its definition in :mod:`mtcert._kernels`) starts in the
*interpreted* tier: a call whose largest array holds at most
:data:`~mtcert._tunables.INTERPRET_MAX_SIZE` elements runs the kernel's own
Python function (``py_func``, with the kernels it calls likewise replaced by
their Python functions), and the time spent is added to the kernel's account.
A larger call, or any call once the account exceeds
:data:`~mtcert._tunables.INTERPRET_BUDGET_S`, compiles the kernel (or loads it
from numba's on-disk cache) and uses it from then on: a long computation pays
the compilation once, as before, and a short script never pays it at all.

Both tiers run the same source with the same IEEE-754 double operations
(``+ - * /``, comparisons, ``math`` functions from the C library in both), so
they return identical results; ``tests/core/test_jit_tiers.py`` checks this on
every tiered kernel.  The differences between numba and Python semantics that
matter here are avoided in the kernels: no integer wrap-around, and floating
division by zero happens only on numpy scalars (numpy's rules in both tiers,
warnings silenced here as numba's ``error_model="numpy"`` does).

The policy: ``auto`` (the default, as above), ``always`` (compile on the first
call, the behaviour of plain numba) or ``never`` (interpret every call; for
debugging: large inputs are then very slow).  The environment variable
``MTCERT_JIT``, read when mtcert is imported, sets the process-wide default
(:func:`set_mode` changes it later); ``with policy(mode):`` overrides it for
one block in the current thread only (a :class:`contextvars.ContextVar`), so
threads that run mtcert side by side each keep their own.

Imports only numpy, numba and :mod:`mtcert._tunables`: the kernel modules
import this one, so it sits in the bottom layer with them.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import threading
import time
import types

import numpy as np
from numba.core.dispatcher import Dispatcher

from mtcert import _tunables

__all__ = ["MODES", "TieredKernel", "get_mode", "policy", "set_mode", "tiered"]

#: The policies ``MTCERT_JIT``, :func:`set_mode` and :func:`policy` accept.
MODES = ("auto", "always", "never")


def _check_mode(mode: str, name: str) -> str:
    if mode not in MODES:
        raise ValueError(f"{name} must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


def _mode_from_environment() -> str:
    mode = os.environ.get("MTCERT_JIT", "auto").strip().lower() or "auto"
    return _check_mode(mode, "MTCERT_JIT")


# The process-wide default, and the override of the current context (None: none).
_default_mode = _mode_from_environment()
_context_mode: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mtcert_jit_policy", default=None
)


def get_mode() -> str:
    """The policy in effect here: ``"auto"``, ``"always"`` or ``"never"``.

    The :func:`policy` block around the caller in this thread, if any, else the
    process-wide default.
    """
    return _context_mode.get() or _default_mode


def set_mode(mode: str) -> str:
    """Set the process-wide default policy; returns the previous default.

    Every thread follows it except inside its own :func:`policy` block.
    """
    global _default_mode
    previous, _default_mode = _default_mode, _check_mode(mode, "mode")
    return previous


@contextlib.contextmanager
def policy(mode: str):
    """Run a block under ``mode`` (e.g. ``"always"`` to time or trace compiled kernels only).

    The policy holds in the current thread (and in the helper threads mtcert
    starts for a call made inside the block); other threads are unaffected.

    Examples
    --------
    >>> import numpy as np, mtcert
    >>> with policy("always"):  # compiles adjust's Holm kernels now
    ...     _ = mtcert.adjust(np.array([0.01, 0.2]), "holm")
    """
    token = _context_mode.set(_check_mode(mode, "mode"))
    try:
        yield
    finally:
        _context_mode.reset(token)


# Python twins share one globals dict per kernel module, in which every kernel
# (numba dispatcher or tiered kernel) is replaced by its twin, so that a twin
# never calls compiled code (which would compile it).
_twins: dict[Dispatcher, types.FunctionType] = {}
_twin_globals: dict[int, dict] = {}
_twin_lock = threading.Lock()
# guards the interpreted-time accounts, which threads may add to concurrently
_account_lock = threading.Lock()


def _python_twin(dispatcher: Dispatcher) -> types.FunctionType:
    """``dispatcher``'s Python function, calling the twins of the kernels it calls."""
    with _twin_lock:
        return _twin_of(dispatcher)


def _twin_of(dispatcher: Dispatcher) -> types.FunctionType:
    twin = _twins.get(dispatcher)
    if twin is not None:
        return twin
    func = dispatcher.py_func
    module_globals = func.__globals__
    key = id(module_globals)
    fresh = key not in _twin_globals
    if fresh:
        _twin_globals[key] = dict(module_globals)
    g = _twin_globals[key]
    twin = types.FunctionType(func.__code__, g, func.__name__, func.__defaults__, func.__closure__)
    twin.__doc__ = func.__doc__
    _twins[dispatcher] = twin
    if fresh:  # after registering the twin: kernels may call each other
        for name, value in module_globals.items():
            if isinstance(value, TieredKernel):
                value = value.dispatcher
            if isinstance(value, Dispatcher):
                g[name] = _twin_of(value)
    return twin


def _largest_array(args) -> int:
    size = 0
    for a in args:
        if isinstance(a, np.ndarray) and a.size > size:
            size = a.size
    return size


class TieredKernel:
    """A numba kernel that runs small calls as Python until compiling pays (see module).

    Other kernels call it as the numba dispatcher it wraps (numba types it as
    that dispatcher), so an entry kernel may also be a helper of another.

    Attributes
    ----------
    dispatcher : numba.core.dispatcher.Dispatcher
        The compiled tier.
    compiled : bool
        Whether calls now go to the compiled tier (under ``auto``).
    seconds_interpreted : float
        Time spent in the interpreted tier so far, across threads.
    """

    def __init__(self, dispatcher: Dispatcher):
        functools.update_wrapper(self, dispatcher.py_func)
        self.dispatcher = dispatcher
        self.seconds_interpreted = 0.0
        self.compiled = False
        self._python: types.FunctionType | None = None  # built on first use: see _twin_of

    @property
    def _numba_type_(self):
        return self.dispatcher._numba_type_

    @property
    def python(self) -> types.FunctionType:
        """The interpreted tier (the kernel's Python twin)."""
        if self._python is None:
            self._python = _python_twin(self.dispatcher)
        return self._python

    def __call__(self, *args):
        mode = _context_mode.get() or _default_mode
        if mode == "never" or (
            mode == "auto"
            and not self.compiled
            and not self.dispatcher.overloads  # compiled already through another route
            and self.seconds_interpreted <= _tunables.INTERPRET_BUDGET_S
            and _largest_array(args) <= _tunables.INTERPRET_MAX_SIZE
        ):
            python = self.python
            start = time.perf_counter()
            with np.errstate(all="ignore"):  # numba's error_model="numpy": inf/nan, silently
                out = python(*args)
            spent = time.perf_counter() - start
            with _account_lock:
                self.seconds_interpreted += spent
            return out
        self.compiled = True
        return self.dispatcher(*args)

    def __repr__(self) -> str:
        tier = "compiled" if self.compiled else "interpreted"
        return f"<tiered kernel {self.__name__} ({tier})>"


def tiered(dispatcher: Dispatcher) -> TieredKernel:
    """Declare a numba kernel tiered (a decorator, above ``@njit``): see the module.

    Examples
    --------
    >>> from numba import njit
    >>> @tiered
    ... @njit(cache=False)
    ... def twice(x):
    ...     return 2 * x
    >>> twice(3)  # small: interpreted under the default policy
    6
    """
    return TieredKernel(dispatcher)
