"""ctypes mirror of include/clopt.h and the loading of libclopt.

Every structure lists the fields of its C counterpart in the same order with the same
types (size_t -> c_size_t, uint64_t -> c_uint64, enums -> c_int, unsigned -> c_uint,
volatile sig_atomic_t * -> POINTER(c_int)), so the library fills in and reads them as it
would from C. Defaults always come from the library's *_init_size functions (clopt.h's
*_init are inline wrappers passing sizeof), called through init() below with the size of
the ctypes mirror: the library then reads exactly the fields mirrored here.
"""

import ctypes
import ctypes.util
import glob
import os
import sys
from ctypes import (CFUNCTYPE, POINTER, Structure, c_char, c_char_p, c_double, c_int,
                    c_size_t, c_uint, c_uint64, c_void_p)

from ._errors import Error

# The header version these structures mirror; a library of another major.minor is refused.
ABI_VERSION = (0, 1)

# enum clopt_status
OK = 0
STOP_MAX_ITERS = 1
STOP_GTOL = 2
STOP_FTOL = 3
STOP_TARGET = 4
STOP_CANCELLED = 5
STOP_LINE_SEARCH = 6
STOP_MAX_EVALS = 7
ERR_INVALID_ARG = -1
ERR_BAD_FILE = -2
ERR_IO = -3
ERR_NO_DEVICE = -4
ERR_UNSUPPORTED = -5
ERR_OUT_OF_MEMORY = -6
ERR_BUILD = -7
ERR_OPENCL = -8
ERR_DIVERGED = -9
ERR_NO_CANDIDATE = -10

# CLOPT_MAX_AXES: the most axes of a shape.
MAX_AXES = 8

# enum clopt_precision
FLOAT = 0
DOUBLE = 1

# enum clopt_init_kind
INIT_NORMAL = 0
INIT_UNIFORM = 1
INIT_CONST = 2
INIT_NONE = 3

# The CLI's stop_reason names (host/cli/report.c stop_name).
STOP_NAMES = {
    STOP_MAX_ITERS: "max_iters",
    STOP_GTOL: "gtol",
    STOP_FTOL: "ftol",
    STOP_TARGET: "target",
    STOP_CANCELLED: "cancelled",
    STOP_LINE_SEARCH: "line_search",
    STOP_MAX_EVALS: "max_evals",
    ERR_DIVERGED: "diverged",
}


class DeviceInfo(Structure):
    _fields_ = [
        ("index", c_size_t),
        ("platform", c_char * 128),
        ("name", c_char * 128),
        ("driver_version", c_char * 64),
        ("kind", c_int),
        ("global_mem_bytes", c_uint64),
        ("max_alloc_bytes", c_uint64),
        ("compute_units", c_uint),
        ("has_fp64", c_int),
    ]


class ContextOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),  # set by the *_init_size functions
        ("device", c_char_p),
        ("kernel_dir", c_char_p),
        ("program_cache", c_char_p),
        ("devices", c_char_p),  # version 2: several devices (the package uses one)
    ]


class CacheStats(Structure):
    _fields_ = [
        ("hits", c_uint64),
        ("misses", c_uint64),
        ("stores", c_uint64),
        ("store_failures", c_uint64),
        ("rejected", c_uint64),
    ]


class Knobs(Structure):
    _fields_ = [
        ("work_group", c_size_t),
        ("elems_per_item", c_size_t),
        ("vector_width", c_size_t),
        ("loss_block", c_size_t),
        ("layout", c_int),
        ("group_partials", c_int),
        ("reduce_group", c_size_t),
        ("accumulate", c_int),
        ("groups_per_cu", c_size_t),
        ("prefetch", c_size_t),
        ("simd_bits", c_size_t),
        ("fuse", c_size_t),
    ]


class Param(Structure):
    _fields_ = [("key", c_char_p), ("value", c_char_p)]


class Progress(Structure):
    _fields_ = [
        ("iteration", c_uint64),
        ("loss", c_double),
        ("grad_norm", c_double),
        ("lr", c_double),
        ("seconds", c_double),
    ]


PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, POINTER(Progress))


class Options(Structure):
    _fields_ = [
        ("struct_size", c_size_t),  # set by the *_init_size functions
        ("objective", c_char_p),
        ("params", POINTER(Param)),
        ("n_params", c_size_t),
        ("dim", c_size_t),
        ("precision", c_int),
        ("optimizer", c_char_p),
        ("lr", c_double),
        ("momentum", c_double),
        ("dampening", c_double),
        ("beta1", c_double),
        ("beta2", c_double),
        ("eps", c_double),
        ("weight_decay", c_double),
        ("alpha", c_double),
        ("amsgrad", c_int),
        ("maximize", c_int),
        ("clip_value", c_double),
        ("clip_norm", c_double),
        ("schedule", c_char_p),
        ("max_iters", c_uint64),
        ("gtol", c_double),
        ("ftol", c_double),
        ("target", c_double),
        ("loss_every", c_uint64),
        ("max_shard_bytes", c_size_t),
        ("init", c_int),
        ("init_value", c_double),
        ("seed", c_uint64),
        ("knobs", Knobs),
        ("progress", PROGRESS_FN),
        ("progress_user", c_void_p),
        ("checkpoint", c_char_p),
        ("checkpoint_every", c_uint64),
        ("stop", POINTER(c_int)),  # volatile sig_atomic_t * (int on Linux)
        ("n_axes", c_size_t),
        ("shape", c_size_t * MAX_AXES),
        ("history", c_double),
        ("c1", c_double),
        ("c2", c_double),
        ("max_ls", c_double),
        ("line_search", c_double),
        ("cg_beta", c_double),
        ("max_evals", c_double),
        ("gd_step", c_double),  # version 5
    ]


class CheckpointReport(Structure):
    _fields_ = [
        ("written", c_uint64),
        ("failed", c_uint64),
        ("last_written", c_uint64),
        ("final_written", c_int),
        ("error", c_char * 512),
    ]


class Result(Structure):
    _fields_ = [
        ("iterations", c_uint64),
        ("loss", c_double),
        ("grad_norm", c_double),
        ("seconds", c_double),
        ("bytes_per_iter", c_double),
        ("bytes_per_element", c_double),
        ("lr", c_double),
        ("final_lr", c_double),
        ("gbytes_per_second", c_double),
        ("diverged_at", c_uint64),
        ("shards", c_size_t),
        ("knobs", Knobs),
        ("evaluations", c_uint64),
    ]


class CheckOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),  # set by the *_init_size functions
        ("objective", c_char_p),
        ("params", POINTER(Param)),
        ("n_params", c_size_t),
        ("dim", c_size_t),
        ("samples", c_size_t),
        ("init", c_int),
        ("init_value", c_double),
        ("seed", c_uint64),
        # The second version: grid objectives.
        ("n_axes", c_size_t),
        ("shape", c_size_t * 3),
    ]


class CheckResult(Structure):
    _fields_ = [
        ("checked", c_size_t),
        ("precision", c_int),
        ("floor", c_double),
        ("worst_error", c_double),
        ("worst_index", c_size_t),
        ("gradient", c_double),
        ("finite_difference", c_double),
    ]


class Bandwidth(Structure):
    _fields_ = [
        ("n", c_size_t),
        ("reps", c_uint),
        ("copy_seconds", c_double),
        ("scale_seconds", c_double),
        ("copy_gbytes_per_second", c_double),
        ("scale_gbytes_per_second", c_double),
    ]


class StepTiming(Structure):
    _fields_ = [
        ("iterations", c_uint64),
        ("reps", c_uint),
        ("seconds", c_double),
        ("bytes_per_iter", c_double),
        ("bytes_per_element", c_double),
        ("gbytes_per_second", c_double),
        ("element_iterations_per_second", c_double),
        ("loss", c_double),
        ("knobs", Knobs),
    ]


class TuneCandidate(Structure):
    _fields_ = [
        ("knobs", Knobs),
        ("ok", c_int),
        ("refused", c_int),
        ("gbytes_per_second", c_double),
        ("note", c_char * 200),
    ]


class TuneProgress(Structure):
    _fields_ = [
        ("index", c_size_t),
        ("count", c_size_t),
        ("candidate", POINTER(TuneCandidate)),
        ("default_knobs", POINTER(Knobs)),
        ("default_gbytes_per_second", c_double),
    ]


TUNE_PROGRESS_FN = CFUNCTYPE(c_int, c_void_p, POINTER(TuneProgress))


class TuneOptions(Structure):
    _fields_ = [
        ("struct_size", c_size_t),  # set by the *_init_size functions
        ("space", c_char_p),
        ("budget_seconds", c_double),
        ("reps", c_uint),
        ("progress", TUNE_PROGRESS_FN),
        ("progress_user", c_void_p),
    ]


class TuneResult(Structure):
    _fields_ = [
        ("knobs", Knobs),
        ("gbytes_per_second", c_double),
        ("defaults_won", c_int),
        ("default_knobs", Knobs),
        ("default_gbytes_per_second", c_double),
        ("count", c_size_t),
        ("tried", c_size_t),
        ("candidates", POINTER(TuneCandidate)),
    ]


# Opaque handles.
CONTEXT_P = c_void_p
SOLVER_P = c_void_p
DB_P = c_void_p

_P = POINTER
_SIGNATURES = {
    "clopt_version": (c_char_p, []),
    "clopt_strerror": (c_char_p, [c_int]),
    "clopt_list_devices": (c_int, [_P(_P(DeviceInfo)), _P(c_size_t)]),
    "clopt_context_options_init_size": (None, [_P(ContextOptions), c_size_t]),
    "clopt_context_create": (c_int, [_P(CONTEXT_P), _P(ContextOptions)]),
    "clopt_context_destroy": (None, [CONTEXT_P]),
    "clopt_context_set_program_cache": (c_int, [CONTEXT_P, c_char_p]),
    "clopt_context_cache_stats": (c_int, [CONTEXT_P, _P(CacheStats)]),
    "clopt_errmsg": (c_char_p, [CONTEXT_P]),
    "clopt_context_device": (_P(DeviceInfo), [CONTEXT_P]),
    "clopt_context_device_count": (c_size_t, [CONTEXT_P]),
    "clopt_options_init_size": (None, [_P(Options), c_size_t]),
    "clopt_solver_create": (c_int, [_P(SOLVER_P), CONTEXT_P, _P(Options)]),
    "clopt_solver_destroy": (None, [SOLVER_P]),
    "clopt_solver_write_theta": (c_int, [SOLVER_P, c_void_p, c_int, c_size_t, c_size_t]),
    "clopt_solver_read_theta": (c_int, [SOLVER_P, c_void_p, c_int, c_size_t, c_size_t]),
    "clopt_solver_save_theta": (c_int, [SOLVER_P, c_char_p, c_int]),
    "clopt_solver_run": (c_int, [SOLVER_P, _P(Result)]),
    "clopt_solver_checkpoint_report": (c_int, [SOLVER_P, _P(CheckpointReport)]),
    "clopt_solver_state_count": (c_size_t, [SOLVER_P]),
    "clopt_solver_steps": (c_uint64, [SOLVER_P]),
    "clopt_solver_resume": (c_int, [SOLVER_P, c_char_p]),
    "clopt_solver_evaluate": (c_int, [SOLVER_P, _P(c_double), _P(c_double)]),
    "clopt_check_options_init_size": (None, [_P(CheckOptions), c_size_t]),
    "clopt_check_gradient": (c_int, [CONTEXT_P, _P(CheckOptions), _P(CheckResult)]),
    "clopt_measure_bandwidth": (c_int, [CONTEXT_P, c_size_t, c_int, c_uint, _P(Bandwidth)]),
    "clopt_bench_step": (c_int, [CONTEXT_P, _P(Options), c_uint, _P(StepTiming)]),
    "clopt_knobs_parse": (c_int, [c_char_p, _P(Knobs), c_char_p, c_size_t]),
    "clopt_knobs_format": (c_int, [_P(Knobs), c_char_p, c_size_t]),
    "clopt_knob_name": (c_char_p, [c_size_t, _P(c_char_p)]),
    "clopt_tuning_db_open": (c_int, [_P(DB_P), c_char_p, c_char_p, c_size_t]),
    "clopt_tuning_db_close": (None, [DB_P]),
    "clopt_tuning_db_path": (c_char_p, [DB_P]),
    "clopt_tuning_db_errmsg": (c_char_p, [DB_P]),
    "clopt_tuning_db_lookup": (c_int, [DB_P, CONTEXT_P, _P(Options), _P(Knobs), _P(c_int),
                                       c_char_p, c_size_t]),
    "clopt_tuning_db_store": (c_int, [DB_P, CONTEXT_P, _P(Options), _P(Knobs), c_double,
                                      c_double, _P(c_int)]),
    "clopt_tune_options_init_size": (None, [_P(TuneOptions), c_size_t]),
    "clopt_tune": (c_int, [CONTEXT_P, _P(Options), _P(TuneOptions), _P(TuneResult)]),
    "clopt_tune_result_free": (None, [_P(TuneResult)]),
    "clopt_tune_space_check": (c_int, [c_char_p, c_char_p, c_size_t]),
    "clopt_objective_names": (_P(c_char_p), []),
    "clopt_objective_describe": (c_int, [c_char_p, _P(c_char_p), _P(c_char_p), c_char_p,
                                         c_size_t]),
    "clopt_optimizer_names": (_P(c_char_p), []),
    "clopt_parse_count": (c_int, [c_char_p, c_uint64, _P(c_uint64), _P(c_char_p)]),
    "clopt_parse_double": (c_int, [c_char_p, _P(c_double), _P(c_char_p)]),
}

def init(struct):
    """Fills an option structure (ContextOptions, Options, CheckOptions, TuneOptions) with
    the library's defaults and its struct_size, as clopt.h's inline *_init functions do."""
    name = {ContextOptions: "clopt_context_options_init_size",
            Options: "clopt_options_init_size",
            CheckOptions: "clopt_check_options_init_size",
            TuneOptions: "clopt_tune_options_init_size"}[type(struct)]
    getattr(lib(), name)(ctypes.byref(struct), ctypes.sizeof(struct))
    return struct


_HOW_TO = ("set CLOPT_LIBRARY to the path of libclopt.so (e.g. build/libclopt.so after "
           "'cmake --build build'), or install clopt so that the system finds libclopt.so.0")


def _candidates():
    """Where the library may be, in the order tried, with a note for the error message."""
    env = os.environ.get("CLOPT_LIBRARY")
    if env:
        yield env, "CLOPT_LIBRARY"
        return
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "libclopt.so*"))):
        yield path, "next to the package"
    for prefix in dict.fromkeys([sys.prefix, sys.base_prefix]):
        path = os.path.join(prefix, "lib", "libclopt.so.0")
        if os.path.exists(path):
            yield path, "the install prefix"
    found = ctypes.util.find_library("clopt")
    if found:
        yield found, "the system (find_library)"
    yield "libclopt.so.0", "the system's library path"


_lib = None


def lib():
    """The loaded library with every signature set; clopt.Error when it cannot be found."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    handle = None
    for path, where in _candidates():
        try:
            handle = ctypes.CDLL(path)
            break
        except OSError as exc:
            tried.append("%s (%s): %s" % (path, where, exc))
    if handle is None:
        raise Error("cannot load libclopt: " + "; ".join(tried) + ". " + _HOW_TO)
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(handle, name)
        except AttributeError:
            raise Error("%s lacks %s: it is not the libclopt this package was made for. %s"
                        % (handle._name, name, _HOW_TO)) from None
        fn.restype = restype
        fn.argtypes = argtypes
    version = handle.clopt_version().decode()
    major_minor = tuple(int(v) for v in version.split(".")[:2])
    if major_minor != ABI_VERSION:
        raise Error("%s is libclopt %s, but this package mirrors the structures of %d.%d. %s"
                    % (handle._name, version, ABI_VERSION[0], ABI_VERSION[1], _HOW_TO))
    _lib = handle
    return handle


_libc = None


def free(pointer):
    """free() of the C library, for memory libclopt allocated with malloc."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None)
        _libc.free.argtypes = [c_void_p]
        _libc.free.restype = None
    _libc.free(pointer)


def text(value):
    """bytes from the library as str."""
    return value.decode("utf-8", "replace") if value is not None else None
