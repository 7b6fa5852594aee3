#!/usr/bin/python3
"""Time to solution: clopt's quasi-Newton and first-order methods against scipy's L-BFGS-B and
torch.optim.LBFGS, each run from the same start to the same target on the same machine.

    /usr/bin/python3 bench/time_to_solution.py [--clopt build/test/clopt] [--sizes 1e4,1e5,1e6]
        [--problems rosenbrock,laplacian,ellipsoid,poisson] [--png tts.png] [--limit 600]

For every problem and n it prints one row per method: whether the target was reached, the
function+gradient evaluations and iterations it took, the seconds (clopt: the solver's own
time from its JSON, and the wall time of the process with its kernel build), and scipy's
seconds over the method's. The stopping rule is the same for all: the first evaluation whose
loss is at or below the target. clopt runs in float where float reaches the target, otherwise
in double; scipy and torch in float64. Needs numpy, scipy, torch and matplotlib (Debian:
python3-numpy python3-scipy python3-torch python3-matplotlib); a missing one drops its rows.
"""
import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Reached(Exception):
    """Raised inside an objective at the first evaluation at or below the target."""


# The objectives, exactly as kernels/obj_*.cl define them, in float64.
def rosenbrock(x):
    valley = x[1:] - x[:-1] ** 2
    off = 1 - x[:-1]
    f = np.sum(100 * valley * valley + off * off)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * valley - 2 * off
    g[1:] += 200 * valley
    return f, g


def laplacian(x, left=0.0, right=1.0):
    d = np.diff(np.concatenate(([left], x, [right])))
    return 0.5 * np.dot(d, d), d[:-1] - d[1:]


def ellipsoid_weights(n, cond=1e6):
    return cond ** (np.arange(n) / max(n - 1, 1))


def poisson_shape(n):
    """The square-ish 2-D grid with about n points (n = 1e5: 316 x 316)."""
    side = max(int(round(math.sqrt(n))), 1)
    return side, max(n // side, 1)


def poisson_apply(u):
    """A u for kernels/obj_poisson.cl's A: the 5-point Laplacian, zero outside the grid."""
    p = np.pad(u, 1)
    return 4 * u - p[:-2, 1:-1] - p[2:, 1:-1] - p[1:-1, :-2] - p[1:-1, 2:]


def poisson_source(shape):
    """b = A u* for a smooth u* (a bump with a ripple), so the minimum -b.u*/2 is known
    without a solve."""
    y, x = np.meshgrid(np.linspace(0, 1, shape[0] + 2)[1:-1],
                       np.linspace(0, 1, shape[1] + 2)[1:-1], indexing="ij")
    u_star = 16 * x * (1 - x) * y * (1 - y) * (1 + 0.25 * np.sin(6 * np.pi * x * y))
    b = poisson_apply(u_star)
    return b, -0.5 * float(np.dot(b.ravel(), u_star.ravel()))


def poisson(x, shape, b):
    """kernels/obj_poisson.cl: 1/2 sum over grid edges (u_p - u_q)^2 - b.u, the edges of
    each point to its +1 neighbour on each axis and to the zero outside on both faces."""
    u = x.reshape(shape)
    f = -np.dot(b.ravel(), x)
    for axis in range(2):
        d = np.diff(np.pad(u, [(1, 1) if k == axis else (0, 0) for k in range(2)]), axis=axis)
        f += 0.5 * np.sum(d * d)
    return f, (poisson_apply(u) - b).ravel()


PROBLEMS = {
    # name: (function of (x, n), start, target from n)
    "rosenbrock": (lambda x, n: rosenbrock(x), "zeros", lambda n: 1e-6),
    "laplacian": (lambda x, n: laplacian(x), "zeros", lambda n: 1 / (2 * (n + 1)) * (1 + 1e-6)),
    "ellipsoid": (None, "normal", lambda n: 1e-6),
    # 2-D poisson on poisson_shape(n) (n rounded to the grid), b = A u*: f* (negative) +
    # 1e-6 |f*|, the laplacian's relative gap.
    "poisson": (None, "zeros", lambda n: poisson_source(poisson_shape(n))[1] * (1 - 1e-6)),
}

# clopt methods: name, run options. First-order runs get an iteration cap (--first-order-iters).
CLOPT_METHODS = {
    "clopt lbfgs": ["--optimizer", "lbfgs"],
    "clopt cg": ["--optimizer", "cg"],
}
FIRST_ORDER = {
    "rosenbrock": ["--optimizer", "adam", "--lr", "0.03"],
    "laplacian": ["--optimizer", "nesterov", "--lr", "0.25", "--momentum", "0.999"],
    "ellipsoid": ["--optimizer", "nesterov", "--lr", "4e-7", "--momentum", "0.999"],
    # lr 1/8: the largest eigenvalue of A is just under 8.
    "poisson": ["--optimizer", "nesterov", "--lr", "0.125", "--momentum", "0.999"],
}


def start_point(kind, n, seed=0):
    if kind == "zeros":
        return np.zeros(n)
    return np.random.default_rng(seed).standard_normal(n)


def objective_of(problem, n):
    if problem == "ellipsoid":
        c = ellipsoid_weights(n)
        return lambda x: (np.dot(c * x, x), 2 * c * x)
    if problem == "poisson":
        shape = poisson_shape(n)
        b = poisson_source(shape)[0]
        return lambda x: poisson(x, shape, b)
    fn = PROBLEMS[problem][0]
    return lambda x: fn(x, n)


def counted(fdf, target, curve):
    """Wraps fdf to count evaluations, keep (seconds, loss) and stop at the target."""
    state = {"evals": 0, "t0": time.perf_counter()}

    def wrapped(x):
        f, g = fdf(x)
        state["evals"] += 1
        curve.append((time.perf_counter() - state["t0"], float(f)))
        if f <= target:
            raise Reached()
        return f, g

    return wrapped, state


def run_scipy(problem, n, x0, target, limit):
    try:
        from scipy.optimize import minimize
    except ImportError:
        return None
    curve = []
    fdf, state = counted(objective_of(problem, n), target, curve)
    reached = False
    iters = [0]

    def callback(_xk):
        iters[0] += 1
        if time.perf_counter() - state["t0"] > limit:
            raise TimeoutError()

    try:
        minimize(fdf, x0.copy(), jac=True, method="L-BFGS-B", callback=callback,
                 options={"maxcor": 10, "maxiter": 10**9, "maxfun": 10**9, "ftol": 0,
                          "gtol": 0})
    except Reached:
        reached = True
    except TimeoutError:
        pass
    return {"reached": reached, "evals": state["evals"], "iters": iters[0],
            "seconds": curve[-1][0] if curve else math.nan, "wall": None, "precision": "double",
            "curve": curve}


def run_torch(problem, n, x0, target, limit):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    fdf = objective_of(problem, n)
    x = torch.tensor(x0.copy(), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([x], lr=1, max_iter=10**9, max_eval=10**9, history_size=10,
                            tolerance_grad=0, tolerance_change=0,
                            line_search_fn="strong_wolfe")
    curve = []
    t0 = time.perf_counter()
    evals = [0]

    def closure():
        # The gradient comes from the same numpy code as scipy's, so both see the same
        # objective; torch's share is the L-BFGS algorithm and its line search.
        f, g = fdf(x.detach().numpy())
        evals[0] += 1
        curve.append((time.perf_counter() - t0, float(f)))
        if f <= target:
            raise Reached()
        if curve[-1][0] > limit:
            raise TimeoutError()
        x.grad = torch.from_numpy(np.asarray(g, dtype=np.float64))
        return torch.tensor(f, dtype=torch.float64)

    reached = False
    try:
        opt.step(closure)
    except Reached:
        reached = True
    except TimeoutError:
        pass
    return {"reached": reached, "evals": evals[0], "iters": opt.state[x].get("n_iter", 0),
            "seconds": curve[-1][0] if curve else math.nan, "wall": None, "precision": "double",
            "curve": curve}


def problem_options(problem, n, tmp):
    """clopt's options for the objective: the grid and its source for poisson."""
    if problem != "poisson":
        return ["--objective", problem, "--dim", str(n)]
    shape = poisson_shape(n)
    source = os.path.join(tmp, "source.npy")
    np.save(source, poisson_source(shape)[0])
    return ["--objective", "poisson", "--shape", f"{shape[0]},{shape[1]}", "--param",
            f"source={source}"]


def run_clopt(clopt, problem, n, init, target, options, precision, iters, limit, tmp):
    json_path = os.path.join(tmp, "result.json")
    trace_path = os.path.join(tmp, "trace.csv")
    cmd = [clopt, "run"] + problem_options(problem, n, tmp) + [
        "--init", init, "--precision", precision, "--target", repr(target), "--iters",
        str(iters), "--json", json_path, "--trace", trace_path, "--quiet"] + options
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"reached": False, "evals": None, "iters": None, "seconds": math.nan,
                "wall": limit, "precision": precision, "curve": [], "error": "time limit"}
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 3):
        return {"reached": False, "evals": None, "iters": None, "seconds": math.nan,
                "wall": wall, "precision": precision, "curve": [],
                "error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    with open(json_path) as f:
        result = json.load(f)
    curve = []
    with open(trace_path) as f:
        for row in csv.DictReader(f):
            curve.append((float(row["seconds"]), float(row["loss"])))
    return {"reached": result["stop_reason"] == "target", "evals": result.get(
        "evaluations", result["iterations"]), "iters": result["iterations"],
            "seconds": result["seconds"], "wall": wall, "precision": precision, "curve": curve}


def run_clopt_best_precision(args, problem, n, init, target, options, iters, tmp):
    """Float where float reaches the target, otherwise double."""
    result = None
    for precision in ("float", "double"):
        result = run_clopt(args.clopt, problem, n, init, target, options, precision, iters,
                           args.limit, tmp)
        if result["reached"]:
            break
    return result


def fmt(value, spec):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else \
        format(value, spec)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clopt", default=os.path.join(ROOT, "build", "test", "clopt"))
    parser.add_argument("--sizes", default="1e4,1e5")
    parser.add_argument("--problems", default="rosenbrock,laplacian,ellipsoid,poisson")
    parser.add_argument("--limit", type=float, default=600,
                        help="seconds allowed to each method and problem (default 600)")
    parser.add_argument("--first-order-iters", type=float, default=2e5)
    parser.add_argument("--png", help="plot loss above the minimum against seconds")
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    problems = args.problems.split(",")
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"# {cpu}, {os.cpu_count()} cores; target: the first evaluation at or below it")
    print("| problem | n | method | precision | reached | evaluations | iterations | seconds |"
          " wall s | scipy s / s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    curves = {}
    with tempfile.TemporaryDirectory() as tmp:
        for problem in problems:
            for n in sizes:
                if problem == "poisson":
                    n = math.prod(poisson_shape(n))
                kind = PROBLEMS[problem][1]
                target = PROBLEMS[problem][2](n)
                x0 = start_point(kind, n)
                init = "zeros"
                if kind != "zeros":
                    init = os.path.join(tmp, "x0.npy")
                    np.save(init, x0)
                rows = {"scipy L-BFGS-B": run_scipy(problem, n, x0, target, args.limit),
                        "torch LBFGS": run_torch(problem, n, x0, target, args.limit)}
                for name, options in CLOPT_METHODS.items():
                    rows[name] = run_clopt_best_precision(args, problem, n, init, target,
                                                          options, 10**7, tmp)
                rows[f"clopt {FIRST_ORDER[problem][1]}"] = run_clopt_best_precision(
                    args, problem, n, init, target, FIRST_ORDER[problem],
                    int(args.first_order_iters), tmp)
                ref = rows["scipy L-BFGS-B"]
                for name, r in rows.items():
                    if r is None:
                        continue
                    speed = (ref["seconds"] / r["seconds"]
                             if ref and ref["reached"] and r["reached"] else None)
                    note = f" ({r['error']})" if r.get("error") else ""
                    print(f"| {problem} | {n:.0e} | {name}{note} | {r['precision']} | "
                          f"{'yes' if r['reached'] else 'no'} | {fmt(r['evals'], 'd')} | "
                          f"{fmt(r['iters'], 'd')} | {fmt(r['seconds'], '.3g')} | "
                          f"{fmt(r['wall'], '.3g')} | {fmt(speed, '.3g')} |", flush=True)
                    curves[(problem, n, name)] = (r["curve"], target)
    if args.png:
        plot(curves, problems, sizes, args.png)


def plot(curves, problems, sizes, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(problems), figsize=(5 * len(problems), 4), squeeze=False)
    for ax, problem in zip(axes[0], problems):
        n = max(sizes)
        # poisson's minimum is negative: plot the loss above it, on the same log axis.
        shift = 0.0
        if problem == "poisson":
            n = math.prod(poisson_shape(n))
            shift = poisson_source(poisson_shape(n))[1]
        for (p, size, name), (curve, target) in curves.items():
            if p != problem or size != n or not curve:
                continue
            t, f = zip(*curve)
            ax.loglog(np.maximum(t, 1e-4), np.maximum(np.array(f) - shift, 1e-300), label=name)
        ax.axhline(PROBLEMS[problem][2](n) - shift, color="grey", linestyle=":", label="target")
        ax.set_title(f"{problem}, n = {n:.0e}")
        ax.set_xlabel("seconds")
        ax.set_ylabel("loss" if shift == 0 else "loss - f*")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"# plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
