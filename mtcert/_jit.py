"""Tiered execution of the numba kernels: small calls run as Python until compiling pays.

Compiling a kernel costs a fixed 0.1–1 s (and about 0.5 s more for the first
kernel of a process), however small the input; running the same kernel's
Python source on a thousand p-values takes milliseconds.  So a kernel reached
through :func:`tiered` starts in the *interpreted* tier: a call whose largest
array holds at most :data:`~mtcert._tunables.INTERPRET_MAX_SIZE` elements runs
the kernel's own Python function (``py_func``, with the kernels it calls
likewise replaced by their Python functions), and the time spent is added to
the kernel's account.  A larger call, or any call once the account exceeds
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

The environment variable ``MTCERT_JIT`` chooses the policy when mtcert is
imported: ``auto`` (the default, as above), ``always`` (compile on the first
call, the behaviour of plain numba) or ``never`` (interpret every call;
for debugging: large inputs are then very slow).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import types

import numpy as np
from numba.core.dispatcher import Dispatcher

from mtcert import _tunables

__all__ = ["MODES", "get_mode", "policy", "set_mode", "tiered"]

#: The policies ``MTCERT_JIT`` (and :func:`set_mode`) accept.
MODES = ("auto", "always", "never")


def _mode_from_environment() -> str:
    mode = os.environ.get("MTCERT_JIT", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"MTCERT_JIT must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


_mode = _mode_from_environment()


def get_mode() -> str:
    """The current policy: ``"auto"``, ``"always"`` or ``"never"``."""
    return _mode


def set_mode(mode: str) -> str:
    """Set the policy for every tiered kernel; returns the previous one."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
    previous, _mode = _mode, mode
    return previous


@contextlib.contextmanager
def policy(mode: str):
    """Run a block under ``mode`` (e.g. ``"always"`` to time or trace compiled kernels only).

    Examples
    --------
    >>> import numpy as np, mtcert
    >>> with policy("always"):  # compiles adjust's Holm kernels now
    ...     _ = mtcert.adjust(np.array([0.01, 0.2]), "holm")
    """
    previous = set_mode(mode)
    try:
        yield
    finally:
        set_mode(previous)


# Python twins share one globals dict per kernel module, in which every numba
# dispatcher is replaced by its twin, so that a twin never calls compiled code
# (which would compile it).
_twins: dict[int, types.FunctionType] = {}
_twin_globals: dict[int, dict] = {}
_twin_lock = threading.Lock()


def _python_twin(dispatcher: Dispatcher) -> types.FunctionType:
    with _twin_lock:
        return _twin_of(dispatcher)


def _twin_of(dispatcher: Dispatcher) -> types.FunctionType:
    twin = _twins.get(id(dispatcher))
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
    _twins[id(dispatcher)] = twin
    if fresh:  # after registering the twin: kernels may call each other
        for name, value in module_globals.items():
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
    """A numba kernel that runs small calls as Python until compiling pays (see module)."""

    __slots__ = ("__name__", "compiled", "dispatcher", "python", "seconds_interpreted")

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.python = _python_twin(dispatcher)
        self.seconds_interpreted = 0.0
        self.compiled = False
        self.__name__ = dispatcher.py_func.__name__

    def __call__(self, *args):
        mode = _mode
        if mode == "never" or (
            mode == "auto"
            and not self.compiled
            and not self.dispatcher.overloads  # compiled already through another route
            and self.seconds_interpreted <= _tunables.INTERPRET_BUDGET_S
            and _largest_array(args) <= _tunables.INTERPRET_MAX_SIZE
        ):
            start = time.perf_counter()
            with np.errstate(all="ignore"):  # numba's error_model="numpy": inf/nan, silently
                out = self.python(*args)
            self.seconds_interpreted += time.perf_counter() - start
            return out
        self.compiled = True
        return self.dispatcher(*args)

    def __repr__(self) -> str:
        tier = "compiled" if self.compiled else "interpreted"
        return f"<tiered kernel {self.__name__} ({tier})>"


class _TieredModule:
    """A kernel module seen with every dispatcher wrapped in :class:`TieredKernel`."""

    def __init__(self, module: types.ModuleType):
        self._module = module

    def __getattr__(self, name: str):
        value = getattr(self._module, name)
        if isinstance(value, Dispatcher):
            value = TieredKernel(value)
        setattr(self, name, value)  # cached: later lookups skip __getattr__
        return value


def tiered(module: types.ModuleType) -> _TieredModule:
    """The kernel ``module`` seen through :class:`TieredKernel` wrappers.

    Examples
    --------
    >>> from mtcert._kernels import methods
    >>> k = tiered(methods)
    >>> k.lr_divisor(3, 10, 2.0)
    9.0
    """
    return _TieredModule(module)
