#!/usr/bin/env python3
"""Plots the loss curve of one or more `clopt run --trace` files.

    python3 scripts/plot_trace.py TRACE.csv [TRACE.csv ...] --png loss.png
        [--x iteration|seconds] [--no-grad] [--title TEXT]

The loss (solid) and ||g|| (dashed) of each trace on a log scale against the iteration,
with the run's seconds on a second x axis above (one trace; --x seconds puts seconds
below instead, which also compares runs of different speeds). TRACE may be '-' for
standard input (`clopt run ... --trace - | python3 scripts/plot_trace.py - --png l.png`).
A trace with a loss <= 0 (a maximised or shifted objective) is drawn on a symmetric log
scale. Needs matplotlib: Debian's python3-matplotlib (apt-get install python3-matplotlib),
or `pip install matplotlib` inside a venv. Exit status: 0 written, 1 matplotlib missing or
the PNG could not be written, 2 bad usage or a malformed trace (one line on stderr).
"""

import argparse
import csv
import io
import os
import sys

COLUMNS = ("iteration", "loss", "grad_norm", "lr", "seconds")


class BadTrace(Exception):
    pass


def read_trace(path):
    """The columns of a trace as lists of floats. Repeated header lines (a resumed run
    appends to its trace) are skipped."""
    if path == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(path, newline="") as f:
                text = f.read()
        except OSError as exc:
            raise BadTrace("%s: %s" % (path, exc.strerror or exc)) from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != COLUMNS:
        raise BadTrace("%s: not a clopt trace (the first line should be %s)"
                       % (path, ",".join(COLUMNS)))
    data = {name: [] for name in COLUMNS}
    for number, row in enumerate(rows[1:], start=2):
        if tuple(row) == COLUMNS or not row:
            continue
        if len(row) != len(COLUMNS):
            raise BadTrace("%s line %d: %d fields, need %d (%s)"
                           % (path, number, len(row), len(COLUMNS), ",".join(COLUMNS)))
        try:
            values = [float(v) for v in row]
        except ValueError:
            raise BadTrace("%s line %d: not numbers: %s" % (path, number, ",".join(row))) \
                from None
        for name, value in zip(COLUMNS, values):
            data[name].append(value)
    if not data["iteration"]:
        raise BadTrace("%s: the trace has no rows (did the run write any loss?)" % path)
    return data


def import_pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    return plt


def interp(x, xs, ys):
    """np.interp, continued past both ends by the overall slope (a tick beyond the data
    must not land on its last point)."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    slope = (ys[-1] - ys[0]) / (xs[-1] - xs[0])
    return np.where(x < xs[0], ys[0] + (x - xs[0]) * slope,
                    np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * slope, np.interp(x, xs, ys)))


def plot(traces, args, plt):
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    x_name = args.x
    positive = all(v > 0 for _, d in traces for v in d["loss"] + d["grad_norm"])
    for label, d in traces:
        line, = ax.plot(d[x_name], d["loss"], label="loss" if len(traces) == 1 else label)
        if not args.no_grad:
            # One trace: its own colour; several: each run's colour, dashed.
            ax.plot(d[x_name], d["grad_norm"], linestyle="--", linewidth=0.8,
                    color="C1" if len(traces) == 1 else line.get_color(),
                    label="‖g‖" if len(traces) == 1 else "‖g‖ " + label)
    ax.set_yscale("log" if positive else "symlog")
    # No margin on x: the seconds axis above maps the same range.
    ax.set_xlim(min(min(d[x_name]) for _, d in traces), max(max(d[x_name]) for _, d in traces))
    ax.set_xlabel("iteration" if x_name == "iteration" else "seconds")
    ax.set_ylabel("loss, ‖g‖" if not args.no_grad else "loss")
    ax.grid(True, which="major", alpha=0.3)
    if x_name == "iteration" and len(traces) == 1:
        d = traces[0][1]
        its, secs = d["iteration"], d["seconds"]
        # Seconds grow with the iteration; np.interp needs neither to be uniform.
        if len(its) > 1 and secs[-1] > secs[0]:
            top = ax.secondary_xaxis(
                "top", functions=(lambda i: interp(i, its, secs),
                                  lambda s: interp(s, secs, its)))
            top.set_xlabel("seconds")
    ax.legend()
    if args.title:
        ax.set_title(args.title)
    fig.tight_layout()
    fig.savefig(args.png)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="plot_trace.py",
        description="Plot the loss curve of clopt run --trace files as a PNG.")
    parser.add_argument("traces", nargs="+", metavar="TRACE.csv",
                        help="a trace written by clopt run --trace ('-': standard input)")
    parser.add_argument("--png", required=True, help="the PNG file to write")
    parser.add_argument("--x", choices=("iteration", "seconds"), default="iteration",
                        help="the horizontal axis (default iteration)")
    parser.add_argument("--no-grad", action="store_true", help="leave out ||g||")
    parser.add_argument("--title", help="a title above the plot")
    args = parser.parse_args(argv)
    if sum(1 for t in args.traces if t == "-") > 1:
        parser.error("standard input ('-') can be given once")
    try:
        traces = [(os.path.basename(t) if t != "-" else "stdin", read_trace(t))
                  for t in args.traces]
    except BadTrace as exc:
        print("plot_trace: %s" % exc, file=sys.stderr)
        return 2
    plt = import_pyplot()
    if plt is None:
        print("plot_trace: matplotlib is missing for %s: install Debian's "
              "python3-matplotlib (apt-get install python3-matplotlib) and run it with "
              "/usr/bin/python3, or pip install matplotlib in a venv" % sys.executable,
              file=sys.stderr)
        return 1
    try:
        plot(traces, args, plt)
    except OSError as exc:
        print("plot_trace: cannot write %s: %s" % (args.png, exc.strerror or exc),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
