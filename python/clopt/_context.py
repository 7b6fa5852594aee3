"""The library's messages in the Python keywords' names, the exceptions for its statuses,
and contexts (device choice, kernel directory, program cache) as `clopt` resolves them
from its flags and environment."""

import contextlib
import ctypes
import operator
import os
import re

from . import _ffi
from ._errors import BadInput, DeviceError, Diverged, Error


def encode(value):
    return None if value is None else os.fsencode(value)


# --- library messages in the keywords' names ----------------------------------------------

_FIELD_KEYWORDS = {"max_iters": "iters", "init_value": "init", "budget_seconds": "budget"}
_PRECISION_RE = re.compile(r"(?<![\w.])options\.precision = CLOPT_(FLOAT|DOUBLE)")
_FIELD_RE = re.compile(r"(?<![\w.])(?:options|check_options|context_options|tune_options)"
                       r"\.([A-Za-z_]\w*)")
_KNOB_RE = re.compile(r"(?<![\w.])knobs\.([A-Za-z_]\w*)")


def _knob_names():
    names, k = {}, 0
    lib = _ffi.lib()
    while True:
        field = ctypes.c_char_p()
        name = lib.clopt_knob_name(k, ctypes.byref(field))
        if not name:
            return names
        names[_ffi.text(field.value)] = _ffi.text(name)
        k += 1


def keyword_names(message):
    """The library names its inputs by struct fields (options.max_iters); Python callers
    know them as keywords (iters), as CLI users know them as flags."""
    message = _PRECISION_RE.sub(lambda m: "precision='%s'" % m.group(1).lower(), message)
    message = _FIELD_RE.sub(lambda m: _FIELD_KEYWORDS.get(m.group(1), m.group(1)), message)
    knobs = None
    if _KNOB_RE.search(message):
        knobs = _knob_names()
        message = _KNOB_RE.sub(lambda m: "tune %s" % knobs.get(m.group(1), m.group(1)),
                               message)
    return message


def raise_status(status, message, user_files=False, result=None):
    """Raises the exception for a negative library status, as the CLI picks its exit
    code (host/cli/report.c exit_code_for): a user's own kernel file that is missing or
    does not compile is bad input."""
    message = keyword_names(message or _ffi.text(_ffi.lib().clopt_strerror(status)))
    if status in (_ffi.ERR_INVALID_ARG, _ffi.ERR_BAD_FILE):
        cls = BadInput
    elif status in (_ffi.ERR_NO_DEVICE, _ffi.ERR_UNSUPPORTED, _ffi.ERR_OUT_OF_MEMORY,
                    _ffi.ERR_OPENCL):
        cls = DeviceError
    elif status == _ffi.ERR_DIVERGED:
        cls = Diverged
    elif status in (_ffi.ERR_IO, _ffi.ERR_BUILD) and user_files:
        cls = BadInput
    else:
        cls = Error
    raise cls(message, status, result)


# --- contexts -----------------------------------------------------------------------------


def program_cache_dir(value):
    """The CLI's program cache resolution (host/cli/args.c program_cache_dir): the keyword,
    else $CLOPT_PROGRAM_CACHE, else $XDG_CACHE_HOME/clopt/programs, else
    ~/.cache/clopt/programs; "off" or "" (or False) turns it off."""
    if value is False:
        return None
    if value is None:
        env = os.environ.get("CLOPT_PROGRAM_CACHE")
        value = env if env else None
    if value is not None:
        value = os.fspath(value)
        return value if value and value != "off" else None
    xdg, home = os.environ.get("XDG_CACHE_HOME"), os.environ.get("HOME")
    if xdg:
        return os.path.join(xdg, "clopt", "programs")
    if home:
        return os.path.join(home, ".cache", "clopt", "programs")
    return None


def devices_text(devices):
    """devices= as the library's list: "all", "0,1", or a sequence of indexes."""
    if isinstance(devices, str):
        return devices
    try:
        indexes = [operator.index(d) for d in devices]
    except TypeError:
        raise BadInput("devices=%r: give \"all\", \"0,1\" or a list of device indexes"
                       % (devices,)) from None
    if not indexes or min(indexes) < 0:
        raise BadInput("devices=%r: give at least one device index, each >= 0" % (devices,))
    return ",".join(str(i) for i in indexes)


@contextlib.contextmanager
def context(device=None, kernel_dir=None, program_cache=None, devices=None):
    """A clopt_context for one call, destroyed on the way out. device: an index or a
    name substring (default $CLOPT_DEVICE, else the library's choice). devices: several
    devices of one model at once ("all", "0,1" or [0, 1]), as --devices; not with device."""
    lib = _ffi.lib()
    if devices is not None:
        if device is not None:
            raise BadInput("device= and devices= are both given: name the devices in one of "
                           "them")
        devices = devices_text(devices)
    elif device is None:
        device = os.environ.get("CLOPT_DEVICE")
    if kernel_dir is None:
        kernel_dir = os.environ.get("CLOPT_KERNEL_DIR")
    copts = _ffi.ContextOptions()
    _ffi.init(copts)
    copts.device = None if device is None else str(device).encode()
    copts.devices = encode(devices)
    copts.kernel_dir = encode(kernel_dir)
    copts.program_cache = encode(program_cache_dir(program_cache))
    ctx = _ffi.CONTEXT_P()
    status = lib.clopt_context_create(ctypes.byref(ctx), ctypes.byref(copts))
    try:
        if status != _ffi.OK:
            message = _ffi.text(lib.clopt_errmsg(ctx)) if ctx else None
            raise_status(status, message)
        yield ctx
    finally:
        lib.clopt_context_destroy(ctx)


def device_dict(info):
    kinds = {1: "cpu", 2: "gpu", 3: "other"}
    return {
        "index": info.index,
        "platform": _ffi.text(info.platform),
        "name": _ffi.text(info.name),
        "driver_version": _ffi.text(info.driver_version),
        "kind": kinds.get(info.kind, "other"),
        "global_mem_bytes": info.global_mem_bytes,
        "max_alloc_bytes": info.max_alloc_bytes,
        "compute_units": info.compute_units,
        "has_fp64": bool(info.has_fp64),
    }
