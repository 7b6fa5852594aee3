"""From keyword arguments to a filled struct clopt_options, as `clopt run` does from its
flags (host/cli/args.c): the same names (long flag, '_' for '-'), the same checks, the
same defaults (from clopt_options_init), the same tuning-database and program-cache
lookups, so a call gives the bits the CLI gives for the same options."""

import ctypes
import math
import numbers
import os
import re
import tempfile

import numpy as np

from . import _ffi
from ._context import encode, keyword_names
from ._errors import BadInput

MAX_DIM = 1 << 48
MAX_GRID_AXES = 3  # --shape's limit (grid objectives have 1 to 3 axes)
MAX_COUNT = 1 << 62
UINT64_MAX = (1 << 64) - 1


# --- numbers and names, checked like the CLI's flags -------------------------------------


def parse_double(name, value):
    """A finite double: a real number, or text as clopt_parse_double reads it."""
    if isinstance(value, str):
        out, why = ctypes.c_double(), ctypes.c_char_p()
        if _ffi.lib().clopt_parse_double(value.encode(), ctypes.byref(out), ctypes.byref(why)):
            raise BadInput("%s=%r: %s" % (name, value, _ffi.text(why.value)))
        return out.value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadInput("%s=%r: need a number" % (name, value))
    value = float(value)
    if not math.isfinite(value):
        raise BadInput("%s=%r: need a finite number" % (name, value))
    return value


def parse_count(name, value, maximum, minimum=0):
    """A whole number in [minimum, maximum]: an int, an integral float, or text as
    clopt_parse_count reads it (1000000, 1e6, 2^20)."""
    if isinstance(value, str):
        out, why = ctypes.c_uint64(), ctypes.c_char_p()
        if _ffi.lib().clopt_parse_count(value.encode(), maximum, ctypes.byref(out),
                                        ctypes.byref(why)):
            raise BadInput("%s=%r: %s (need a whole number <= %d)"
                           % (name, value, _ffi.text(why.value), maximum))
        result = out.value
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise BadInput("%s=%r: need a whole number" % (name, value))
    else:
        if isinstance(value, numbers.Integral):
            result = int(value)
        elif math.isfinite(value) and float(value).is_integer():
            result = int(value)
        else:
            raise BadInput("%s=%r: need a whole number" % (name, value))
        if result < 0 or result > maximum:
            raise BadInput("%s=%r: need a whole number from 0 to %d" % (name, value, maximum))
    if result < minimum:
        raise BadInput("%s=%r: must be at least %d" % (name, value, minimum))
    return result


def parse_init(spec):
    """The CLI's --init SPEC (not FILE.npy): (init kind, value)."""
    if not isinstance(spec, str):
        raise BadInput("init=%r: use 'normal[:SIGMA]', 'uniform[:A]', 'zeros', 'const:V', "
                       "a FILE.npy or x0=ARRAY" % (spec,))
    head, colon, tail = spec.partition(":")
    value = 1.0
    if colon:
        out, why = ctypes.c_double(), ctypes.c_char_p()
        if _ffi.lib().clopt_parse_double(tail.encode(), ctypes.byref(out), ctypes.byref(why)):
            raise BadInput("init=%r: %s after ':'" % (spec, _ffi.text(why.value)))
        value = out.value
    if head in ("random", "normal"):
        kind = _ffi.INIT_NORMAL
    elif head == "uniform":
        kind = _ffi.INIT_UNIFORM
    elif not colon and spec == "zeros":
        kind, value = _ffi.INIT_CONST, 0.0
    elif colon and head == "const":
        kind = _ffi.INIT_CONST
    else:
        raise BadInput("init=%r: use random, normal[:SIGMA], uniform[:A], zeros, const:V or "
                       "FILE.npy" % (spec,))
    if kind != _ffi.INIT_CONST and not value > 0:
        raise BadInput("init=%r: the scale must be > 0" % (spec,))
    return kind, value


def parse_precision(value):
    if value in ("float", "float32", np.float32):
        return _ffi.FLOAT
    if value in ("double", "float64", np.float64):
        return _ffi.DOUBLE
    raise BadInput("precision=%r: use 'float' or 'double'" % (value,))


def knobs_from_text(text, knobs=None, name="tune"):
    """Kernel knobs from "wg=16,epw=4096,..." (or a dict) through clopt_knobs_parse."""
    if isinstance(text, dict):
        text = ",".join("%s=%s" % (k, v) for k, v in text.items())
    if not isinstance(text, str):
        raise BadInput("%s=%r: give knobs as 'KEY=VALUE,...' or a dict" % (name, text))
    knobs = knobs if knobs is not None else _ffi.Knobs()
    err = ctypes.create_string_buffer(512)
    if _ffi.lib().clopt_knobs_parse(text.encode(), ctypes.byref(knobs), err, len(err)):
        raise BadInput("%s: %s" % (name, _ffi.text(err.value)), _ffi.ERR_INVALID_ARG)
    return knobs


def knobs_text(knobs):
    buf = ctypes.create_string_buffer(256)
    _ffi.lib().clopt_knobs_format(ctypes.byref(knobs), buf, len(buf))
    return _ffi.text(buf.value)


# --- the problem: struct clopt_options from keywords --------------------------------------

# Keyword -> (kind, field): the rows of the CLI's run option table that fill options.
_NUMBER_OPTIONS = {
    "gtol": ("nonneg", "gtol"),
    "ftol": ("nonneg", "ftol"),
    "target": ("double", "target"),
    "momentum": ("double", "momentum"),
    "dampening": ("double", "dampening"),
    "beta1": ("double", "beta1"),
    "beta2": ("double", "beta2"),
    "eps": ("double", "eps"),
    "weight_decay": ("double", "weight_decay"),
    "alpha": ("double", "alpha"),
    "clip_value": ("double", "clip_value"),
    "clip_norm": ("double", "clip_norm"),
    "history": ("double", "history"),
    "c1": ("double", "c1"),
    "c2": ("double", "c2"),
    "max_ls": ("double", "max_ls"),
    "max_evals": ("double", "max_evals"),
    "seed": ("count", "seed", UINT64_MAX),
    "loss_every": ("positive", "loss_every", MAX_COUNT),
    "max_shard_bytes": ("count", "max_shard_bytes", MAX_COUNT),
    "checkpoint_every": ("positive", "checkpoint_every", MAX_COUNT),
}
_FLAG_OPTIONS = ("amsgrad", "maximize")
# Words stored as the library's numbers (the CLI's --line-search and --cg-beta).
_WORD_OPTIONS = {
    "line_search": {"armijo": 1.0, "wolfe": 2.0},
    "cg_beta": {"fr": 1.0, "pr": 2.0, "hs": 3.0},
    "step": {"fixed": math.nan, "bb1": 1.0, "bb2": 2.0},
}
# Word options whose field has another name.
_WORD_FIELDS = {"step": "gd_step"}
_STRING_OPTIONS = ("schedule",)
_PATH_OPTIONS = ("checkpoint",)
# Handled by Problem itself, or by the caller (minimize, bench, tune).
_OTHER_OPTIONS = ("devices", "shape", "init", "tune", "tuning_db", "kernel_dir", "program_cache",
                  "resume", "out")
RUN_KEYWORDS = frozenset(_NUMBER_OPTIONS) | frozenset(_FLAG_OPTIONS) | frozenset(
    _STRING_OPTIONS) | frozenset(_PATH_OPTIONS) | frozenset(_OTHER_OPTIONS) | frozenset(
    _WORD_OPTIONS)

# Options of other commands, or of the CLI's own output, with what to use instead.
_NOT_HERE = {
    "json": "the result object holds what --json writes",
    "quiet": "the library never prints",
    "csv": "bench() returns the numbers",
    "iterations": "the iteration limit is iters=",
    "max_iters": "the iteration limit is iters=",
    "param": "objective parameters go in params={KEY: VALUE}",
}


def check_keywords(options, allowed, where):
    for key in options:
        if key in allowed:
            continue
        hint = _NOT_HERE.get(key)
        if key in ("reps", "space", "budget", "store"):
            hint = "it is an option of clopt.bench()/clopt.tune()"
        elif key in ("x0", "callback", "trace", "resume", "out", "checkpoint", "devices"):
            hint = hint or "it is an option of clopt.minimize()"
        raise BadInput("%s() got an unknown keyword %r%s" % (
            where, key, " (%s)" % hint if hint else
            " (keywords: %s)" % ", ".join(sorted(allowed))))


def _data_array_file(tmpdir, key, value):
    """A numpy array given for a data parameter, written as the float32/float64 .npy the
    library reads, in its own shape (its elements in C order): the library then checks it
    as it checks the CLI's file (a grid's data must have the grid's shape or be flat; a
    vector theta takes any shape)."""
    arr = np.asarray(value)
    if arr.ndim == 0 or arr.size == 0:
        raise BadInput("params[%r]: need an array with at least one element, got shape %s"
                       % (key, arr.shape))
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    arr = np.ascontiguousarray(arr)
    path = os.path.join(tmpdir, "param-%s.npy" % re.sub(r"[^\w.-]", "_", key))
    np.save(path, arr.astype(arr.dtype.newbyteorder("<"), copy=False))
    return path


class Problem:
    """struct clopt_options filled from keywords, with everything it points at kept
    alive. `tmpdir` holds files made for the call (an objective's source, data arrays)."""

    def __init__(self, tmpdir, objective="sphere", dim=None, optimizer="gd", lr=None,
                 iters=None, params=None, precision="float", **options):
        lib = _ffi.lib()
        self._keep = []
        self.opts = o = _ffi.Options()
        _ffi.init(o)
        self.options = options
        self.user_files = bool(options.get("kernel_dir") or os.environ.get("CLOPT_KERNEL_DIR"))

        # objective: a built-in name, a .cl file, or OpenCL source text
        if not isinstance(objective, (str, os.PathLike)):
            raise BadInput("objective=%r: give a built-in name, a .cl file or OpenCL source"
                           % (objective,))
        objective = os.fspath(objective)
        if objective in objective_names():
            pass
        elif objective.endswith(".cl") and "\n" not in objective:
            if not os.path.isfile(objective):
                raise BadInput("objective %r: no such file" % objective, _ffi.ERR_IO)
            self.user_files = True
        elif "clopt_" in objective or "\n" in objective or "(" in objective:
            path = os.path.join(tmpdir, "objective.cl")
            with open(path, "w") as f:
                f.write(objective)
            objective = path
            self.user_files = True
        # else: an unknown name, which the library refuses naming the built-in ones
        self.objective = objective
        o.objective = self._str(objective)

        # params: KEY -> value as text (a numpy array for a data parameter)
        self.data_files = []
        if params:
            if not isinstance(params, dict):
                raise BadInput("params=%r: give a dict {KEY: VALUE}" % (params,))
            arr = (_ffi.Param * len(params))()
            for k, (key, value) in enumerate(params.items()):
                if isinstance(value, (np.ndarray, list, tuple)):
                    value = _data_array_file(tmpdir, key, value)
                elif isinstance(value, float):
                    value = repr(value)
                elif isinstance(value, os.PathLike):
                    value = os.fspath(value)
                else:
                    value = str(value)
                if value.endswith(".npy"):
                    # A data file the caller named: one that is missing is bad input.
                    self.data_files.append(value)
                    self.user_files = True
                arr[k].key = self._str(str(key))
                arr[k].value = self._str(value)
            self._keep.append(arr)
            o.params = arr
            o.n_params = len(params)

        self.dim_given = dim is not None
        if dim is not None:
            o.dim = parse_count("dim", dim, MAX_DIM, 1)
        self.shape = None
        if options.get("shape") is not None:
            self._set_shape(options["shape"])
        if not isinstance(optimizer, str):
            raise BadInput("optimizer=%r: give a name (%s)"
                           % (optimizer, ", ".join(optimizer_names())))
        o.optimizer = self._str(optimizer)
        if lr is not None:
            o.lr = parse_double("lr", lr)
            if o.lr < 0:
                raise BadInput("lr=%r: must be >= 0" % (lr,))
        self.iters_given = iters is not None
        if iters is not None:
            o.max_iters = parse_count("iters", iters, MAX_COUNT)
        o.precision = parse_precision(precision)

        for key, spec in _NUMBER_OPTIONS.items():
            value = options.get(key)
            if value is None:
                continue
            kind, field = spec[0], spec[1]
            if kind in ("double", "nonneg"):
                v = parse_double(key, value)
                if kind == "nonneg" and v < 0:
                    raise BadInput("%s=%r: must be >= 0" % (key, value))
            else:
                v = parse_count(key, value, spec[2], 1 if kind == "positive" else 0)
            setattr(o, field, v)
        for key in _FLAG_OPTIONS:
            value = options.get(key)
            if value is not None:
                if not isinstance(value, (bool, np.bool_, int)):
                    raise BadInput("%s=%r: give True or False" % (key, value))
                setattr(o, key, 1 if value else 0)
        for key, words in _WORD_OPTIONS.items():
            value = options.get(key)
            if value is not None:
                if value not in words:
                    raise BadInput("%s=%r: use %s" % (key, value, " or ".join(words)))
                setattr(o, _WORD_FIELDS.get(key, key), words[value])
        for key in _STRING_OPTIONS + _PATH_OPTIONS:
            value = options.get(key)
            if value is not None:
                if not isinstance(value, (str, os.PathLike)):
                    raise BadInput("%s=%r: give text" % (key, value))
                setattr(o, key, self._str(os.fspath(value)))
        if o.checkpoint_every and not o.checkpoint:
            raise BadInput("checkpoint_every needs checkpoint=FILE")

        self.init_array = None  # theta to write after creating the solver
        init = options.get("init")
        if init is not None:
            self.set_init(init, "init")

        self.knobs_given = options.get("tune") is not None
        if self.knobs_given:
            knobs_from_text(options["tune"], o.knobs)
        self.knob_source = "tune" if self.knobs_given else "built-in defaults"

    def _set_shape(self, shape):
        """shape=(S0, S1[, S2]) as --shape: theta as a grid in C order, n the product (dim,
        when given too, must agree); x0 and .npy inputs have that shape or are flat."""
        if isinstance(shape, str):
            axes = shape.split(",")
        elif isinstance(shape, (numbers.Integral, np.integer)) and not isinstance(shape, bool):
            axes = [shape]
        else:
            try:
                axes = list(shape)
            except TypeError:
                axes = None
        if not axes or len(axes) > MAX_GRID_AXES:
            raise BadInput("shape=%r: give 1 to %d axis lengths, e.g. shape=(1023, 1025)"
                           % (shape, MAX_GRID_AXES))
        self.shape = tuple(parse_count("shape", a.strip() if isinstance(a, str) else a,
                                       MAX_DIM, 1) for a in axes)
        product = 1
        for axis in self.shape:
            product *= axis
            if product > MAX_DIM:
                raise BadInput("shape=%r: the grid holds more than %d elements"
                               % (shape, MAX_DIM))
        o = self.opts
        if self.dim_given and product != o.dim:
            raise BadInput("shape=%r holds %d elements but dim is %d: drop dim or make them "
                           "agree" % (shape, product, o.dim))
        o.dim = product
        self.dim_given = True
        o.n_axes = len(self.shape)
        for k, axis in enumerate(self.shape):
            o.shape[k] = axis

    def _str(self, value):
        b = encode(value)
        self._keep.append(b)
        return b

    def set_init(self, init, name):
        """x0 / init: an array or FILE.npy (written with clopt_solver_write_theta), else an
        initialiser spec."""
        o = self.opts
        if isinstance(init, (str, os.PathLike)) and os.fspath(init).endswith(".npy"):
            path = os.fspath(init)
            try:
                init = np.load(path, allow_pickle=False)
            except OSError as exc:
                raise BadInput("%s file %r: %s" % (name, path, exc.strerror or exc),
                               _ffi.ERR_IO) from None
            except ValueError as exc:
                raise BadInput("%s file %r: %s" % (name, path, exc), _ffi.ERR_BAD_FILE) from None
            if init.dtype not in (np.float32, np.float64) or init.ndim == 0:
                raise BadInput("%s file %r: need a float32 or float64 array, got %s %s"
                               % (name, path, init.dtype, init.shape), _ffi.ERR_BAD_FILE)
            # The CLI's reader refuses these (their bytes are not in C order): so does this.
            if init.ndim > 1 and init.flags.f_contiguous and not init.flags.c_contiguous:
                raise BadInput("%s file %r: shape %s is stored in Fortran order: save it in C "
                               "order (np.save(path, np.ascontiguousarray(arr)))"
                               % (name, path, init.shape), _ffi.ERR_BAD_FILE)
        if isinstance(init, str):
            o.init, o.init_value = parse_init(init)
            self.init_array = None
            return
        arr = np.asarray(init)
        if arr.ndim == 0 or arr.size == 0:
            raise BadInput("%s: need an array with at least one element, got shape %s"
                           % (name, arr.shape))
        if arr.ndim > _ffi.MAX_AXES:
            raise BadInput("%s: shape %s has %d axes: at most %d are kept (use "
                           "arr.reshape(-1))" % (name, arr.shape, arr.ndim, _ffi.MAX_AXES))
        if arr.dtype not in (np.float32, np.float64):
            if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
                raise BadInput("%s: need numbers, got dtype %s" % (name, arr.dtype))
            arr = arr.astype(np.float64)
        # theta is the array's elements in C order; options.shape keeps its shape, so x and
        # out= come back in it (a vector needs none).
        shape = arr.shape
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("=")).reshape(-1)
        finite = np.isfinite(arr)
        if o.precision == _ffi.FLOAT:
            finite &= np.abs(arr) <= np.finfo(np.float32).max
        if not finite.all():
            k = int(np.argmin(finite))
            raise BadInput("%s: element %d is %g, which is not a finite %s"
                           % (name, k, arr[k], "double" if o.precision else "float"))
        if self.shape is not None:
            # As --init with --shape: the grid's shape or flat; x comes back in the grid's.
            if len(shape) > 1 and shape != self.shape:
                raise BadInput("%s has shape %s but shape is %s: give %s in that shape (or "
                               "flat)" % (name, shape, self.shape, name))
            if arr.size != o.dim:
                raise BadInput("%s holds %d elements but shape %s holds %d"
                               % (name, arr.size, self.shape, o.dim))
            o.init = _ffi.INIT_NONE
            self.init_array = arr
            return
        if self.dim_given and arr.size != o.dim:
            raise BadInput("%s holds %d elements but dim is %d" % (name, arr.size, o.dim))
        o.dim = arr.size
        o.init = _ffi.INIT_NONE
        # A grid objective takes this shape as its grid's, as the CLI takes --init's.
        o.n_axes = len(shape) if len(shape) > 1 else 0
        for k, axis in enumerate(shape if len(shape) > 1 else ()):
            o.shape[k] = axis
        self.init_array = arr

    def dim_from_data_file(self):
        """Without dim or x0, a data file parameter (shifted_sphere's target) sets n, as in
        the CLI. A file that cannot be read is left for the library to report."""
        if self.dim_given or self.init_array is not None:
            return
        for path in self.data_files:
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
                if arr.ndim >= 1 and 1 <= arr.size <= MAX_DIM:
                    self.opts.dim = arr.size
            except (OSError, ValueError):
                pass
            return

    def tuning_db_path(self):
        value = self.options.get("tuning_db")
        if value is None:
            value = os.environ.get("CLOPT_TUNING_DB") or None
        return encode(value)

    def knobs_from_database(self, ctx):
        """The CLI's knobs_from_database: without tune=, the tuning database's entry for
        this problem, if any."""
        if self.knobs_given:
            return
        lib = _ffi.lib()
        db = _ffi.DB_P()
        err = ctypes.create_string_buffer(256)
        lib.clopt_tuning_db_open(ctypes.byref(db), self.tuning_db_path(), err, len(err))
        if not db:
            return
        try:
            knobs, found = _ffi.Knobs(), ctypes.c_int(0)
            how = ctypes.create_string_buffer(128)
            status = lib.clopt_tuning_db_lookup(db, ctx, ctypes.byref(self.opts),
                                                ctypes.byref(knobs), ctypes.byref(found),
                                                how, len(how))
            if status == _ffi.OK and found.value:
                self.opts.knobs = knobs
                self.knob_source = "tuning database %s, %s" % (
                    _ffi.text(lib.clopt_tuning_db_path(db)),
                    keyword_names(_ffi.text(how.value)))
            elif status != _ffi.OK:
                self.knob_source = "built-in defaults (the tuning database is corrupted)"
        finally:
            lib.clopt_tuning_db_close(db)


_objective_names = None


def objective_names():
    global _objective_names
    if _objective_names is None:
        _objective_names = _names(_ffi.lib().clopt_objective_names())
    return _objective_names


def optimizer_names():
    return _names(_ffi.lib().clopt_optimizer_names())


def _names(array):
    names, k = [], 0
    while array[k]:
        names.append(_ffi.text(array[k]))
        k += 1
    return names


def temporary_directory():
    return tempfile.TemporaryDirectory(prefix="clopt-")
