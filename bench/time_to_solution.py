#!/usr/bin/env python3
"""Time to solution: clopt lbfgs/cg against scipy's L-BFGS-B, each from the same start to
the same target (torch.optim.LBFGS and a first-order clopt run are not in this first cut).

    python3 bench/time_to_solution.py [--clopt build/rel/clopt] [--problems rosenbrock:1e4,...]
        [--optimizers lbfgs,cg] [--timeout 900]

The start is clopt's theta_0 (written with --iters 0 --out), so every solver begins at the
same point; scipy stops at its first evaluation at or below the target. Prints one table
row per solver and problem: seconds, iterations, function+gradient evaluations, final loss.
A first cut (issue 15): no PNG yet, and the problems are rosenbrock (from zeros) and
ellipsoid (cond 1e6, N(0,1))."""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

TARGET = 1e-6
INIT = {"rosenbrock": "zeros", "ellipsoid": "normal:1"}


def fdf(objective, x):
    if objective == "rosenbrock":
        valley = x[1:] - x[:-1] ** 2
        off = 1 - x[:-1]
        f = float(np.sum(100 * valley ** 2 + off ** 2))
        g = np.zeros_like(x)
        g[:-1] = -400 * x[:-1] * valley - 2 * off
        g[1:] += 200 * valley
        return f, g
    n = x.size
    c = 1e6 ** (np.arange(n) / max(n - 1, 1))
    return float(np.sum(c * x * x)), 2 * c * x


def clopt_run(clopt, objective, n, optimizer, extra, timeout, out=None):
    with tempfile.TemporaryDirectory() as d:
        js = os.path.join(d, "r.json")
        args = [clopt, "run", "--objective", objective, "--dim", str(n), "--init",
                INIT[objective], "--optimizer", optimizer, "--precision", "double", "--quiet",
                "--json", js] + extra
        if out:
            args += ["--out", out]
        subprocess.run(args, check=False, timeout=timeout, stdout=subprocess.DEVNULL)
        with open(js) as f:
            return json.load(f)


class Reached(Exception):
    pass


def scipy_run(objective, x0):
    from scipy.optimize import minimize
    count = [0]

    def fun(x):
        count[0] += 1
        f, g = fdf(objective, x)
        if f <= TARGET:
            raise Reached(f)
        return f, g

    start = time.perf_counter()
    f = None
    try:
        r = minimize(fun, x0, jac=True, method="L-BFGS-B",
                     options={"maxcor": 10, "maxiter": 10**7, "maxfun": 10**7, "gtol": 0,
                              "ftol": 0})
        f, nit = r.fun, r.nit
    except Reached as e:
        f, nit = e.args[0], None
    return time.perf_counter() - start, nit, count[0], f


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clopt", default="build/rel/clopt")
    p.add_argument("--problems", default="rosenbrock:1e4,ellipsoid:1e5")
    p.add_argument("--optimizers", default="lbfgs,cg")
    p.add_argument("--timeout", type=float, default=900)
    a = p.parse_args()
    rows = []
    for spec in a.problems.split(","):
        objective, n = spec.split(":")
        n = int(float(n))
        for opt in a.optimizers.split(","):
            d = clopt_run(a.clopt, objective, n, opt, ["--iters", "10000000", "--target",
                                                      str(TARGET)], a.timeout)
            rows.append((objective, n, "clopt " + opt, d["seconds"], d["iterations"],
                         d.get("evaluations"), d["loss"]))
        try:
            import scipy  # noqa: F401
        except ImportError:
            continue
        with tempfile.TemporaryDirectory() as d:
            x0_path = os.path.join(d, "x0.npy")
            clopt_run(a.clopt, objective, n, "gd", ["--iters", "0"], a.timeout, x0_path)
            x0 = np.load(x0_path).astype(np.float64)
        s, nit, nfev, f = scipy_run(objective, x0)
        rows.append((objective, n, "scipy L-BFGS-B", s, nit, nfev, f))
    print("%-11s %9s  %-16s %10s %11s %11s %12s" % ("problem", "n", "solver", "seconds",
                                                   "iterations", "evaluations", "loss"))
    for r in rows:
        print("%-11s %9d  %-16s %10.2f %11s %11s %12.4e" % (r[0], r[1], r[2], r[3],
                                                           r[4] if r[4] is not None else "-",
                                                           r[5], r[6]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
