#!/usr/bin/env python3
"""The README's comparison table: clopt's GD and Adam steps against the STREAM-style C + OpenMP
in-place scale and against numpy doing the same update, at several n, all in one run.

    python3 bench/compare.py --bench build/test/clopt_bench_step [--sizes 1e6,1e7,1e8]
                             [--iters 20] [--rounds 3] [--png compare.png]

clopt's numbers and the C loop's come from clopt_bench_step (which measures both in the same
process, round by round); numpy's are measured here on the same machine right after. Every
rate counts the bytes an iteration must move, as clopt does: 8 bytes per element for GD
(theta read and written) and 24 for Adam (theta, m and v), in float32. numpy's update is
the accurate one: in place where it can be, and the loss summed in float64.
"""
import argparse
import re
import statistics
import subprocess
import sys
import time

import numpy as np


def clopt_rates(bench, n, iters, rounds):
    out = subprocess.run(
        [bench, "--dim", str(n), "--iters", str(iters), "--rounds", str(rounds),
         "--optimizers", "gd,adam"],
        check=True, capture_output=True, text=True).stdout
    rates = {}
    for line in out.splitlines():
        m = re.match(r"^(gd|adam)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            rates[m.group(1)] = (float(m.group(3)), float(m.group(5)))  # clopt, C loop
    if set(rates) != {"gd", "adam"}:
        sys.exit("could not read clopt_bench_step's table:\n" + out)
    return rates


def float64_sum_of_squares(x):
    """The loss in float64 without a float64 copy of x: einsum casts in buffered chunks."""
    return np.einsum("i,i->", x, x, dtype=np.float64, casting="safe")


def numpy_gd(n, iters, rounds):
    x = np.random.default_rng(0).standard_normal(n, dtype=np.float32)
    lr = np.float32(0.01)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iters):
            loss = float64_sum_of_squares(x)
            x *= np.float32(1) - np.float32(2) * lr  # x - lr * 2x, in place
        times.append(time.perf_counter() - start)
        del loss
    return 8.0 * n * iters / statistics.median(times) / 1e9


def numpy_adam(n, iters, rounds):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(n, dtype=np.float32)
    m = np.zeros(n, np.float32)
    v = np.zeros(n, np.float32)
    g = np.empty(n, np.float32)
    t = np.empty(n, np.float32)
    lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
    times = []
    step = 0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(iters):
            step += 1
            loss = float64_sum_of_squares(x)
            np.multiply(x, np.float32(2), out=g)
            m *= np.float32(b1)
            m += np.float32(1 - b1) * g
            v *= np.float32(b2)
            np.multiply(g, g, out=t)
            v += np.float32(1 - b2) * t
            np.sqrt(v, out=t)
            t /= np.float32(np.sqrt(1 - b2 ** step))
            t += np.float32(eps)
            np.divide(m, t, out=t)
            x -= np.float32(lr / (1 - b1 ** step)) * t
        times.append(time.perf_counter() - start)
        del loss
    return 24.0 * n * iters / statistics.median(times) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bench", default="build/test/clopt_bench_step")
    p.add_argument("--sizes", default="1e6,1e7,1e8")
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--png", default="")
    a = p.parse_args()
    sizes = [int(float(s)) for s in a.sizes.split(",")]
    rows = []
    print(f"{'n':>11} {'step':>5} {'clopt GB/s':>11} {'C loop GB/s':>12} {'numpy GB/s':>11}"
          f" {'vs C':>6} {'vs numpy':>9}")
    for n in sizes:
        rates = clopt_rates(a.bench, n, a.iters, a.rounds)
        numpy_rates = {"gd": numpy_gd(n, a.iters, a.rounds),
                       "adam": numpy_adam(n, max(1, a.iters // 4), a.rounds)}
        for step in ("gd", "adam"):
            clopt, c_loop = rates[step]
            rows.append((n, step, clopt, c_loop, numpy_rates[step]))
            print(f"{n:>11} {step:>5} {clopt:>11.2f} {c_loop:>12.2f} {numpy_rates[step]:>11.2f}"
                  f" {clopt / c_loop:>6.2f} {clopt / numpy_rates[step]:>9.2f}", flush=True)
    if a.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for step, style in (("gd", "-"), ("adam", "--")):
            r = [row for row in rows if row[1] == step]
            ns = [row[0] for row in r]
            ax.plot(ns, [row[2] for row in r], "o" + style, label=f"clopt {step}")
            ax.plot(ns, [row[4] for row in r], "s" + style, label=f"numpy {step}")
        c = [row for row in rows if row[1] == "gd"]
        ax.plot([row[0] for row in c], [row[3] for row in c], "k:", label="C + OpenMP scale")
        ax.set_xscale("log")
        ax.set_xlabel("n (float32 elements)")
        ax.set_ylabel("GB/s (bytes an iteration must move)")
        ax.legend()
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(a.png, dpi=120)
        print("plot:", a.png)


if __name__ == "__main__":
    main()
