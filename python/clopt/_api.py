"""The public functions: minimize, devices, objectives, optimizers, check_gradient, bench,
tune."""

import collections
import ctypes
import math
import os
import signal
import threading

import numpy as np

from . import _ffi
from ._errors import BadInput
from ._context import context, device_dict, raise_status
from ._problem import (Problem, RUN_KEYWORDS, check_keywords, knobs_text, objective_names,
                       optimizer_names, parse_count, parse_double, parse_init,
                       temporary_directory)


class _Bunch(dict):
    """A dict whose keys are also attributes (as scipy.optimize.OptimizeResult)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value

    def __dir__(self):
        return list(self.keys())

    def __repr__(self):
        width = max(map(len, self.keys())) + 1 if self else 0
        lines = []
        for key, value in self.items():
            if isinstance(value, np.ndarray) and value.size > 6:
                text = "array(%s ... %s, dtype=%s, n=%d)" % (
                    np.array2string(value[:3])[:-1], np.array2string(value[-3:])[1:],
                    value.dtype, value.size)
            elif isinstance(value, dict) and all(isinstance(v, np.ndarray)
                                                 for v in value.values()):
                text = "{%s} (%d rows)" % (", ".join(value), max(
                    (v.size for v in value.values()), default=0))
            else:
                text = repr(value)
            lines.append("%s: %s" % (key.rjust(width), text))
        return "\n".join(lines)


class OptimizeResult(_Bunch):
    """What minimize() returns: x, loss (also fun), grad_norm, iterations (also nit), stop
    (the CLI's stop_reason), status, success, message, seconds, gbytes_per_second, ..."""


class CheckResult(_Bunch):
    """What check_gradient() returns."""


class BenchResult(_Bunch):
    """What bench() returns."""


class TuneResult(_Bunch):
    """What tune() returns."""


Progress = collections.namedtuple("Progress", "iteration loss grad_norm lr seconds")
Progress.__doc__ = ("One loss read back during a run: L(theta_t) and ||g|| before update t, "
                    "the learning rate, seconds since the run started.")


def devices():
    """Every OpenCL device of every platform (clopt_list_devices), as dicts; [] when there
    is none."""
    lib = _ffi.lib()
    out, count = ctypes.POINTER(_ffi.DeviceInfo)(), ctypes.c_size_t(0)
    status = lib.clopt_list_devices(ctypes.byref(out), ctypes.byref(count))
    try:
        if status == _ffi.ERR_NO_DEVICE:
            return []
        if status != _ffi.OK:
            raise_status(status, None)
        return [device_dict(out[k]) for k in range(count.value)]
    finally:
        if out:
            _ffi.free(ctypes.cast(out, ctypes.c_void_p))


def objectives():
    """The built-in objectives: name, formula, minimum and parameters (as text)."""
    lib = _ffi.lib()
    result = []
    for name in objective_names():
        formula, minimum = ctypes.c_char_p(), ctypes.c_char_p()
        params = ctypes.create_string_buffer(4096)
        status = lib.clopt_objective_describe(name.encode(), ctypes.byref(formula),
                                              ctypes.byref(minimum), params, len(params))
        if status != _ffi.OK:
            raise_status(status, None)
        result.append({"name": name, "formula": _ffi.text(formula.value),
                       "minimum": _ffi.text(minimum.value), "params": _ffi.text(params.value)})
    return result


def optimizers():
    """The optimizer names."""
    return optimizer_names()


def version():
    """The version of the libclopt in use."""
    return _ffi.text(_ffi.lib().clopt_version())


class _SigintStop:
    """During a run, SIGINT sets the options' stop flag (which the library polls) instead
    of raising; the previous handler comes back afterwards. Python runs the handler at the
    next Python code: the progress callback, called with each loss read back."""

    def __init__(self, flag):
        self.flag = flag
        self.caught = False
        self.previous = None

    def _handler(self, signo, frame):
        self.caught = True
        self.flag.value = 1

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
            except ValueError:
                self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


_MINIMIZE_KEYWORDS = RUN_KEYWORDS


def minimize(objective="sphere", x0=None, dim=None, optimizer="gd", lr=None, iters=1000,
             params=None, precision="float", device=None, callback=None, trace=False,
             **options):
    """Minimises an objective on an OpenCL device, as `clopt run` does with the same
    options (the same bits).

    objective: a built-in name (clopt.objectives()), a path to a .cl file, or OpenCL
    source text defining clopt_fdf. x0: an array of any shape (float32/float64 keep their
    bits; its elements are theta in C order, and x and out= come back in its shape), a
    FILE.npy, or an initialiser spec ("normal:0.5", "uniform:2", "zeros", "const:3");
    default normal:1 from seed. dim: needed without an x0 array (default 1e6). shape:
    (S0, S1[, S2]) or "S0,S1[,S2]", as --shape: theta as a grid for grid objectives (n the
    product; x0 of that shape or flat; x comes back in it); without it, a 2-D or 3-D x0
    gives the grid its shape, and a flat x0 is a grid of one axis. params:
    {KEY: VALUE}, a numpy array for a data parameter. callback(progress) gets each loss
    read back (iteration, loss, grad_norm, lr, seconds); returning True cancels.
    trace=True: result.trace holds arrays iteration, loss, grad_norm, lr, seconds.
    Every other `clopt run` option by its long name, '_' for '-': momentum, beta1, beta2,
    eps, weight_decay, alpha, amsgrad, maximize, dampening, clip_value, clip_norm,
    schedule, history, c1, c2, max_ls, max_evals, line_search ("armijo"/"wolfe"), cg_beta
    ("fr"/"pr"/"hs"), step ("fixed"/"bb1"/"bb2": gd's Barzilai-Borwein steps), gtol, ftol,
    target, loss_every, seed, init, max_shard_bytes, tune (knobs), tuning_db, checkpoint,
    checkpoint_every, resume, out (FILE.npy), kernel_dir, program_cache. devices: several devices of one model at once ("all", "0,1" or [0, 1]),
    as --devices (not with device=); the result is bit-identical to one device.

    Raises BadInput, DeviceError, Diverged (exc.result holds the last finite x) or Error;
    Ctrl-C stops after the current iteration and raises KeyboardInterrupt with .result.
    """
    check_keywords(options, _MINIMIZE_KEYWORDS, "minimize")
    if callback is not None and not callable(callback):
        raise BadInput("callback=%r: need a callable" % (callback,))
    if not isinstance(trace, (bool, np.bool_)):
        raise BadInput("trace=%r: give True or False (the trace comes back as result.trace)"
                       % (trace,))
    lib = _ffi.lib()
    with temporary_directory() as tmpdir:
        problem = Problem(tmpdir, objective, dim, optimizer, lr, iters, params, precision,
                          **options)
        if x0 is not None:
            if options.get("init") is not None:
                raise BadInput("give x0 or init, not both")
            problem.set_init(x0, "x0")
        resume = options.get("resume")
        if resume is not None:
            resume = os.fspath(resume)
            if not os.access(resume, os.R_OK):
                raise BadInput("resume=%r: %s" % (resume, "no such file" if not
                               os.path.exists(resume) else "not readable"), _ffi.ERR_IO)
        problem.dim_from_data_file()
        o = problem.opts

        with context(device, options.get("kernel_dir"), options.get("program_cache"),
                     options.get("devices")) as ctx:
            def fail(status, result=None):
                raise_status(status, _ffi.text(lib.clopt_errmsg(ctx)), problem.user_files,
                             result)

            problem.knobs_from_database(ctx)

            rows = [] if trace else None
            errors = []
            checkpoint_error = None
            stop_flag = ctypes.c_int(0)

            def on_progress(user, p):
                try:
                    p = p.contents
                    info = Progress(p.iteration, p.loss, p.grad_norm, p.lr, p.seconds)
                    if rows is not None:
                        rows.append(info)
                    if callback is not None and callback(info):
                        return 1
                    return 1 if stop_flag.value else 0
                except BaseException as exc:  # noqa: B902 - re-raised after the run
                    errors.append(exc)
                    return 1

            progress_fn = _ffi.PROGRESS_FN(on_progress)
            o.progress = progress_fn
            o.stop = ctypes.pointer(stop_flag)

            solver = _ffi.SOLVER_P()
            try:
                status = lib.clopt_solver_create(ctypes.byref(solver), ctx, ctypes.byref(o))
                if (status == _ffi.ERR_INVALID_ARG and not problem.knobs_given
                        and problem.knob_source.startswith("tuning")):
                    # Knobs this build no longer accepts: the defaults still run (as the CLI).
                    o.knobs = _ffi.Knobs()
                    problem.knob_source = "built-in defaults"
                    status = lib.clopt_solver_create(ctypes.byref(solver), ctx,
                                                     ctypes.byref(o))
                if status != _ffi.OK:
                    fail(status)
                if resume is not None:
                    status = lib.clopt_solver_resume(solver, os.fsencode(resume))
                    if status != _ffi.OK:
                        raise_status(status, _ffi.text(lib.clopt_errmsg(ctx)), True)
                elif problem.init_array is not None:
                    arr = problem.init_array
                    prec = _ffi.DOUBLE if arr.dtype == np.float64 else _ffi.FLOAT
                    status = lib.clopt_solver_write_theta(solver, arr.ctypes.data, prec, 0,
                                                          arr.size)
                    if status != _ffi.OK:
                        fail(status)

                result = _ffi.Result()
                with _SigintStop(stop_flag) as sigint:
                    status = lib.clopt_solver_run(solver, ctypes.byref(result))
                if status < 0 and status != _ffi.ERR_DIVERGED:
                    fail(status)
                message = _ffi.text(lib.clopt_errmsg(ctx)) if status < 0 else None

                dtype = np.float64 if o.precision == _ffi.DOUBLE else np.float32
                x = np.empty(o.dim, dtype=dtype)
                rs = lib.clopt_solver_read_theta(solver, x.ctypes.data, o.precision, 0, o.dim)
                if rs != _ffi.OK:
                    fail(rs)
                if o.n_axes:  # x0's shape (options.shape), as out= writes it
                    x = x.reshape(tuple(o.shape[:o.n_axes]))
                out = options.get("out")
                if out is not None:
                    rs = lib.clopt_solver_save_theta(solver, os.fsencode(os.fspath(out)),
                                                     o.precision)
                    if rs != _ffi.OK:
                        fail(rs)
                res = _make_result(problem, ctx, result, status, x, rows, message)
                # A checkpoint that could not be written did not stop the run (the library
                # goes on); with theta and out safe, it is an error now, as the CLI's exit 1.
                report = _ffi.CheckpointReport()
                lib.clopt_solver_checkpoint_report(solver, ctypes.byref(report))
                if report.failed and not errors:
                    checkpoint_error = report.error.decode(errors="replace")
            finally:
                lib.clopt_solver_destroy(solver)

    if errors:
        exc = errors[0]
        if isinstance(exc, BaseException):
            try:
                exc.result = res
            except AttributeError:
                pass
        raise exc
    if checkpoint_error is not None and status != _ffi.ERR_DIVERGED:
        raise_status(_ffi.ERR_IO, "%d checkpoint write%s failed (%s); the run went on" % (
            report.failed, "" if report.failed == 1 else "s", checkpoint_error), False, res)
    if sigint.caught and status == _ffi.STOP_CANCELLED:
        exc = KeyboardInterrupt()
        exc.result = res
        raise exc
    if status == _ffi.ERR_DIVERGED:
        raise_status(status, message, problem.user_files, res)
    return res


def _make_result(problem, ctx, r, status, x, rows, message):
    lib = _ffi.lib()
    o = problem.opts
    stop = _ffi.STOP_NAMES.get(status, "error")
    res = OptimizeResult(
        x=x,
        loss=r.loss,
        grad_norm=r.grad_norm,
        iterations=r.iterations,
        stop=stop,
        status=status,
        success=status in (_ffi.STOP_GTOL, _ffi.STOP_FTOL, _ffi.STOP_TARGET),
        message=message or stop,
        seconds=r.seconds,
        gbytes_per_second=r.gbytes_per_second,
        bytes_per_iteration=r.bytes_per_iter,
        bytes_per_element=r.bytes_per_element,
        # lbfgs and cg have no learning rate (their steps come from the line search): None,
        # as the CLI's JSON writes null, rather than the library's NaN.
        lr=None if math.isnan(r.lr) else r.lr,
        final_lr=None if math.isnan(r.final_lr) else r.final_lr,
        shards=r.shards,
        knobs=knobs_text(r.knobs),
        knobs_source=problem.knob_source,
        objective=problem.objective,
        optimizer=o.optimizer.decode(),
        n=o.dim,
        precision="double" if o.precision == _ffi.DOUBLE else "float",
        device=_ffi.text(lib.clopt_context_device(ctx).contents.name),
        devices=lib.clopt_context_device_count(ctx),
    )
    res["fun"] = res["loss"]
    res["nit"] = res["iterations"]
    # Function and gradient evaluations (lbfgs and cg count each line-search trial).
    res["evaluations"] = res["nfev"] = r.evaluations
    if status == _ffi.ERR_DIVERGED:
        res["diverged_at"] = r.diverged_at
    if rows is not None:
        # The trace ends with the final theta, as the CLI's --trace does.
        if not rows or rows[-1].iteration != r.iterations:
            rows.append(Progress(r.iterations, r.loss, r.grad_norm, r.final_lr, r.seconds))
        res["trace"] = {
            "iteration": np.array([p.iteration for p in rows], dtype=np.uint64),
            "loss": np.array([p.loss for p in rows], dtype=np.float64),
            "grad_norm": np.array([p.grad_norm for p in rows], dtype=np.float64),
            "lr": np.array([p.lr for p in rows], dtype=np.float64),
            "seconds": np.array([p.seconds for p in rows], dtype=np.float64),
        }
    return res


def check_gradient(objective="sphere", dim=None, samples=None, params=None, device=None,
                   init=None, seed=None, tol=None, kernel_dir=None, program_cache=None,
                   shape=None):
    """Compares the objective's gradient with a fourth-order finite difference at sampled
    elements (clopt check). passed: worst_error <= tol (default 1e-6 in double, 1e-2 in
    float arithmetic). shape=(S0, S1[, S2]): a grid objective's grid (--shape)."""
    lib = _ffi.lib()
    with temporary_directory() as tmpdir:
        # Problem does the objective, params, dim and shape; the rest of its options struct
        # is not used.
        problem = Problem(tmpdir, objective, dim=dim, params=params, kernel_dir=kernel_dir,
                          shape=shape)
        c = _ffi.CheckOptions()
        _ffi.init(c)
        c.objective = problem.opts.objective
        c.params, c.n_params = problem.opts.params, problem.opts.n_params
        if problem.dim_given:
            c.dim = problem.opts.dim
        c.n_axes = problem.opts.n_axes
        for k in range(c.n_axes):
            c.shape[k] = problem.opts.shape[k]
        if samples is not None:
            c.samples = parse_count("samples", samples, 1 << 24, 1)
        if init is not None:
            c.init, c.init_value = parse_init(init)
        if seed is not None:
            c.seed = parse_count("seed", seed, (1 << 64) - 1)
        if tol is not None:
            tol = parse_double("tol", tol)
            if not tol > 0:
                raise BadInput("tol=%r: must be > 0" % (tol,))
        with context(device, kernel_dir, program_cache) as ctx:
            r = _ffi.CheckResult()
            status = lib.clopt_check_gradient(ctx, ctypes.byref(c), ctypes.byref(r))
            if status != _ffi.OK:
                raise_status(status, _ffi.text(lib.clopt_errmsg(ctx)), problem.user_files)
            dev = _ffi.text(lib.clopt_context_device(ctx).contents.name)
    precision = "double" if r.precision == _ffi.DOUBLE else "float"
    if tol is None:
        tol = 1e-6 if r.precision == _ffi.DOUBLE else 1e-2
    return CheckResult(objective=problem.objective, n=c.dim, checked=r.checked,
                       precision=precision, floor=r.floor, worst_error=r.worst_error,
                       worst_index=r.worst_index, gradient=r.gradient,
                       finite_difference=r.finite_difference, tolerance=tol,
                       passed=bool(r.worst_error <= tol), device=dev)


_BENCH_KEYWORDS = RUN_KEYWORDS - {"resume", "out", "checkpoint", "checkpoint_every", "devices"}


def bench(objective="sphere", dim=None, optimizer="gd", lr=None, iters=None, params=None,
          precision="float", device=None, reps=5, **options):
    """The device's STREAM-style bandwidth (clopt_measure_bandwidth), then the fused
    step's (clopt_bench_step: `reps` timed runs of `iters` iterations, default 20), and
    their ratio, as `clopt bench`."""
    check_keywords(options, _BENCH_KEYWORDS, "bench")
    reps = parse_count("reps", reps, 1000, 1)
    lib = _ffi.lib()
    with temporary_directory() as tmpdir:
        problem = Problem(tmpdir, objective, dim, optimizer, lr, iters, params, precision,
                          **options)
        if problem.init_array is not None:
            raise BadInput("bench() times the step from an initialiser: init=FILE.npy is an "
                           "option of minimize()")
        if problem.iters_given and problem.opts.max_iters == 0:
            raise BadInput("iters must be at least 1 for bench()")
        problem.dim_from_data_file()
        o = problem.opts
        if not problem.iters_given:
            o.max_iters = 20
        with context(device, options.get("kernel_dir"), options.get("program_cache")) as ctx:
            problem.knobs_from_database(ctx)
            bw, step = _ffi.Bandwidth(), _ffi.StepTiming()
            status = lib.clopt_measure_bandwidth(ctx, o.dim, o.precision, reps,
                                                 ctypes.byref(bw))
            if status == _ffi.OK:
                status = lib.clopt_bench_step(ctx, ctypes.byref(o), reps, ctypes.byref(step))
            if status != _ffi.OK:
                raise_status(status, _ffi.text(lib.clopt_errmsg(ctx)), problem.user_files)
            dev = _ffi.text(lib.clopt_context_device(ctx).contents.name)
    scale = bw.scale_gbytes_per_second
    return BenchResult(
        device=dev, objective=problem.objective, optimizer=o.optimizer.decode(),
        precision="double" if o.precision == _ffi.DOUBLE else "float", n=o.dim,
        iterations_per_rep=step.iterations, reps=reps, stream_n=bw.n,
        copy_gbytes_per_second=bw.copy_gbytes_per_second,
        scale_gbytes_per_second=scale, step_seconds=step.seconds,
        bytes_per_iteration=step.bytes_per_iter, bytes_per_element=step.bytes_per_element,
        step_gbytes_per_second=step.gbytes_per_second,
        element_iterations_per_second=step.element_iterations_per_second, loss=step.loss,
        ratio_to_scale=step.gbytes_per_second / scale if scale > 0 else 0.0,
        knobs=knobs_text(step.knobs), knobs_source=problem.knob_source)


_TUNE_KEYWORDS = RUN_KEYWORDS - {"resume", "out", "checkpoint", "checkpoint_every", "tune",
                                  "devices"}


def tune(objective="sphere", dim=None, optimizer="gd", lr=None, iters=None, params=None,
         precision="float", device=None, space=None, budget=None, reps=3, store=False,
         callback=None, **options):
    """Searches kernel knobs for a problem (clopt_tune): each candidate is checked against
    the default knobs' result and timed (`reps` runs of `iters` iterations, default 20).
    space: "KEY=V|V,..." (default: the device type's pruned lists); budget: seconds.
    store=True keeps the choice in the tuning database (tuning_db=FILE, else
    $CLOPT_TUNING_DB, else $XDG_CACHE_HOME/clopt/tuning.json), which minimize() and
    bench() then use. callback(dict) sees each candidate; returning True stops the search."""
    check_keywords(options, _TUNE_KEYWORDS, "tune")
    reps = parse_count("reps", reps, 1000, 1)
    lib = _ffi.lib()
    topts = _ffi.TuneOptions()
    _ffi.init(topts)
    if space is not None:
        if not isinstance(space, str):
            raise BadInput("space=%r: give 'KEY=V|V,...'" % (space,))
        err = ctypes.create_string_buffer(512)
        if lib.clopt_tune_space_check(space.encode(), err, len(err)) != _ffi.OK:
            raise_status(_ffi.ERR_INVALID_ARG, _ffi.text(err.value))
        topts.space = space.encode()
    if budget is not None:
        topts.budget_seconds = parse_double("budget", budget)
        if not topts.budget_seconds > 0:
            raise BadInput("budget=%r: must be > 0 seconds" % (budget,))
    topts.reps = reps
    errors = []

    def on_progress(user, p):
        try:
            p = p.contents
            if callback is None or p.index == 0:
                return 0
            info = dict(_candidate(p.candidate.contents), index=p.index, count=p.count)
            return 1 if callback(info) else 0
        except BaseException as exc:  # noqa: B902 - re-raised after the search
            errors.append(exc)
            return 1

    progress_fn = _ffi.TUNE_PROGRESS_FN(on_progress)
    topts.progress = progress_fn
    with temporary_directory() as tmpdir:
        problem = Problem(tmpdir, objective, dim, optimizer, lr, iters, params, precision,
                          **options)
        if problem.init_array is not None:
            raise BadInput("tune() times the step from an initialiser: init=FILE.npy is an "
                           "option of minimize()")
        if problem.iters_given and problem.opts.max_iters == 0:
            raise BadInput("iters must be at least 1 for tune()")
        problem.dim_from_data_file()
        o = problem.opts
        if not problem.iters_given:
            o.max_iters = 20
        with context(device, options.get("kernel_dir"), options.get("program_cache")) as ctx:
            r = _ffi.TuneResult()
            status = lib.clopt_tune(ctx, ctypes.byref(o), ctypes.byref(topts), ctypes.byref(r))
            try:
                if errors:
                    raise errors[0]
                if status != _ffi.OK:
                    raise_status(status, _ffi.text(lib.clopt_errmsg(ctx)), problem.user_files)
                res = TuneResult(
                    knobs=knobs_text(r.knobs), gbytes_per_second=r.gbytes_per_second,
                    defaults_won=bool(r.defaults_won), default_knobs=knobs_text(r.default_knobs),
                    default_gbytes_per_second=r.default_gbytes_per_second, count=r.count,
                    tried=r.tried,
                    candidates=[_candidate(r.candidates[k]) for k in range(r.tried)],
                    stored=None)
                if store:
                    res["stored"] = _store(problem, ctx, r)
            finally:
                lib.clopt_tune_result_free(ctypes.byref(r))
    return res


def _candidate(c):
    return {"knobs": knobs_text(c.knobs), "ok": bool(c.ok), "refused": bool(c.refused),
            "gbytes_per_second": c.gbytes_per_second, "note": _ffi.text(c.note)}


def _store(problem, ctx, r):
    """Stores the choice in the tuning database; its path."""
    lib = _ffi.lib()
    db = _ffi.DB_P()
    err = ctypes.create_string_buffer(256)
    status = lib.clopt_tuning_db_open(ctypes.byref(db), problem.tuning_db_path(), err, len(err))
    if not db:
        raise_status(status if status < 0 else _ffi.ERR_INVALID_ARG,
                     _ffi.text(err.value) or "no tuning database: give tuning_db=FILE")
    try:
        replaced = ctypes.c_int(0)
        status = lib.clopt_tuning_db_store(db, ctx, ctypes.byref(problem.opts),
                                           ctypes.byref(r.knobs), r.gbytes_per_second,
                                           r.default_gbytes_per_second, ctypes.byref(replaced))
        if status != _ffi.OK:
            raise_status(status, _ffi.text(lib.clopt_tuning_db_errmsg(db)))
        return _ffi.text(lib.clopt_tuning_db_path(db))
    finally:
        lib.clopt_tuning_db_close(db)
