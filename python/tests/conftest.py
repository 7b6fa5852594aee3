"""Shared set-up: a program cache and an empty tuning database for the session (the CLI
and the package both read them from the environment), and the CLI from $CLOPT_CLI."""

import json
import os
import subprocess

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session", autouse=True)
def clopt_environment(tmp_path_factory):
    base = tmp_path_factory.mktemp("clopt-env")
    saved = {k: os.environ.get(k) for k in ("CLOPT_PROGRAM_CACHE", "CLOPT_TUNING_DB",
                                            "CLOPT_KERNEL_DIR")}
    # Compiled kernels are shared by every test and the CLI; no tuning database entry
    # changes the knobs behind a test's back.
    os.environ["CLOPT_PROGRAM_CACHE"] = str(base / "programs")
    os.environ["CLOPT_TUNING_DB"] = str(base / "tuning.json")
    os.environ.pop("CLOPT_KERNEL_DIR", None)
    yield base
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def cli():
    path = os.environ.get("CLOPT_CLI")
    if not path:
        pytest.skip("CLOPT_CLI is not set (the clopt CLI to compare with)")
    assert os.access(path, os.X_OK), "CLOPT_CLI=%s is not an executable" % path
    return path


@pytest.fixture
def run_cli(cli, tmp_path):
    """Runs `clopt run ARGS --out x.npy --json -`; (theta, the JSON summary)."""

    def run(*args):
        out, trace = tmp_path / "cli-x.npy", tmp_path / "cli-trace.csv"
        for path in (out, trace):
            if path.exists():
                path.unlink()
        proc = subprocess.run([cli, "run", *args, "--out", str(out), "--trace", str(trace),
                               "--json", "-", "--quiet"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=120)
        assert proc.returncode == 0, "clopt run %s: %s" % (" ".join(args), proc.stderr)
        summary = json.loads(proc.stdout)
        # The trace has every loss read back, in %.17g (exact); its last row is the final
        # theta's, as the summary's loss.
        rows = np.loadtxt(trace, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64)
        summary["trace"] = {"iteration": rows[:, 0].astype(np.uint64), "loss": rows[:, 1],
                            "grad_norm": rows[:, 2], "lr": rows[:, 3]}
        return np.load(out), summary

    return run


@pytest.fixture(scope="session")
def quartic():
    return os.path.join(REPO, "examples", "quartic.cl")
