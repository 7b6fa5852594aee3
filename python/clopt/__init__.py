"""clopt: gradient-based optimisation on OpenCL devices, from Python.

A thin ctypes layer over libclopt (no compiler needed): numpy arrays in and out, the
same results as the `clopt` CLI for the same options.

    >>> import clopt
    >>> r = clopt.minimize("rosenbrock", dim=1000, optimizer="adam", lr=1e-2, iters=500)
    >>> r.loss, r.x[:3], r.stop

The library is found through $CLOPT_LIBRARY (a path to libclopt.so), else a copy next to
this package, else the install prefix or the system's library path.
"""

from ._api import (BenchResult, CheckResult, OptimizeResult, Progress, TuneResult, bench,
                   check_gradient, devices, minimize, objectives, optimizers, tune, version)
from ._errors import BadInput, DeviceError, Diverged, Error

__version__ = "0.1.0"

__all__ = [
    "minimize", "devices", "objectives", "optimizers", "check_gradient", "bench", "tune",
    "version", "OptimizeResult", "CheckResult", "BenchResult", "TuneResult", "Progress",
    "Error", "BadInput", "DeviceError", "Diverged",
]
