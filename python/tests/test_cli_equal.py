"""clopt.minimize gives the CLI's bits: the same options to `clopt run` and to minimize()
must give the same theta (exact dtype, every element) and the same loss, ||g||, iteration
count, stop reason and knobs."""

import numpy as np
import pytest

import clopt

# (id, clopt run flags, minimize keywords): the same problem spelled both ways. Each kernel
# variant (optimizer, precision, maximize, clipping, objective and its parameters are
# compile-time defines) is a build of tens of seconds on a cold PoCL cache, so the cases
# share variants and fold several options into one.
CASES = [
    ("gd", ["--dim", "1000", "--iters", "50"], dict(dim=1000, iters=50)),
    ("adam", ["--dim", "777", "--optimizer", "adam", "--lr", "0.01", "--beta2", "0.99",
              "--iters", "60", "--seed", "7"],
     dict(dim=777, optimizer="adam", lr=0.01, beta2=0.99, iters=60, seed=7)),
    ("schedule", ["--optimizer", "momentum", "--lr", "0.05", "--schedule", "cosine:40:0.001",
                  "--clip-value", "0.5", "--maximize", "--dim", "2^10", "--iters", "40",
                  "--init", "uniform:2"],
     dict(optimizer="momentum", lr="0.05", schedule="cosine:40:0.001", clip_value=0.5,
          maximize=True, dim="2^10", iters=40, init="uniform:2")),
    ("rosenbrock_double", ["--objective", "rosenbrock", "--precision", "double", "--dim", "500",
                           "--lr", "1e-3", "--iters", "80", "--init", "normal:0.5",
                           "--loss-every", "7"],
     dict(objective="rosenbrock", precision="double", dim=500, lr=1e-3, iters=80,
          x0="normal:0.5", loss_every=7)),
    ("gtol", ["--dim", "300", "--gtol", "1e-3", "--iters", "1000", "--lr", "0.2"],
     dict(dim=300, gtol=1e-3, iters=1000, lr=0.2)),
]


def json_number(value):
    """A double as the CLI's JSON writer (cJSON) prints it: %.15g when that reads back
    within an ulp or so, else %.17g; the JSON's value is then not always the exact double,
    so exact comparisons use the trace (%.17g)."""
    return (value, float("%.15g" % value))


def assert_same(result, x_cli, summary):
    assert result.x.dtype == x_cli.dtype
    assert result.x.shape == x_cli.shape
    assert np.array_equal(result.x, x_cli)
    # Exact: the final loss and ||g|| as the CLI's trace wrote them (%.17g round-trips).
    assert result.loss == summary["trace"]["loss"][-1]
    assert result.grad_norm == summary["trace"]["grad_norm"][-1]
    assert summary["loss"] in json_number(result.loss)
    assert summary["grad_norm"] in json_number(result.grad_norm)
    assert result.iterations == summary["iterations"]
    assert result.stop == summary["stop_reason"]
    assert result.knobs == summary["knobs"]
    assert result.lr == summary["lr"]
    # Every loss read back along the way, exactly.
    for key in ("iteration", "loss", "grad_norm", "lr"):
        assert np.array_equal(result.trace[key], summary["trace"][key]), key


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_bits_as_cli(case, run_cli):
    _, flags, keywords = case
    x_cli, summary = run_cli(*flags)
    result = clopt.minimize(trace=True, **keywords)
    assert_same(result, x_cli, summary)
    assert result.x.dtype == (np.float64 if keywords.get("precision") == "double"
                              else np.float32)
    # maximize ascends; the others descend
    ascending = result.trace["loss"][-1] > result.trace["loss"][0]
    assert ascending == bool(keywords.get("maximize"))


def test_gtol_case_stops_early(run_cli):
    result = clopt.minimize(dim=300, gtol=1e-3, iters=1000, lr=0.2)
    assert result.stop == "gtol" and result.success
    assert 0 < result.iterations < 1000
    assert result.grad_norm <= 1e-3


def test_user_objective_file(run_cli, quartic):
    x_cli, summary = run_cli("--objective", quartic, "--param", "a=3", "--lr", "0.01",
                             "--dim", "600", "--iters", "70")
    result = clopt.minimize(quartic, params={"a": 3}, lr=0.01, dim=600, iters=70,
                            trace=True)
    assert_same(result, x_cli, summary)
    assert 0 < result.loss < result.trace["loss"][0]


def test_user_objective_source_text(run_cli, quartic):
    """OpenCL source given as text goes through a temporary .cl file: same bits."""
    with open(quartic) as f:
        source = f.read()
    x_cli, summary = run_cli("--objective", quartic, "--param", "a=3", "--lr", "0.01",
                             "--dim", "600", "--iters", "70")
    result = clopt.minimize(source, params={"a": 3}, lr=0.01, dim=600, iters=70,
                            trace=True)
    assert_same(result, x_cli, summary)


def test_x0_array_same_as_init_file(run_cli, tmp_path):
    x0 = np.random.default_rng(3).standard_normal(900).astype(np.float32)
    path = tmp_path / "x0.npy"
    np.save(path, x0)
    x_cli, summary = run_cli("--init", str(path), "--iters", "25")
    result = clopt.minimize(x0=x0, iters=25, trace=True)
    assert_same(result, x_cli, summary)
    # The same file given by path.
    assert_same(clopt.minimize(x0=str(path), iters=25, trace=True),
                x_cli, summary)


def test_data_array_parameter(run_cli, tmp_path):
    """shifted_sphere's target as a numpy array: written to a .npy, n taken from it."""
    target = np.linspace(-1, 1, 513).astype(np.float32)
    path = tmp_path / "target.npy"
    np.save(path, target)
    x_cli, summary = run_cli("--objective", "shifted_sphere", "--param",
                             "target=%s" % path, "--iters", "30")
    result = clopt.minimize("shifted_sphere", params={"target": target}, iters=30,
                            trace=True)
    assert result.n == 513
    assert_same(result, x_cli, summary)


def test_x0_of_any_shape_same_as_init_file(run_cli, tmp_path):
    """A grid-shaped x0 and the same .npy as --init: the same bits, and x, out= and the
    CLI's --out all keep the shape."""
    x0 = np.random.default_rng(4).standard_normal((30, 7, 3)).astype(np.float32)
    path = tmp_path / "grid.npy"
    np.save(path, x0)
    x_cli, summary = run_cli("--init", str(path), "--iters", "25")
    assert x_cli.shape == (30, 7, 3)
    out = tmp_path / "py-x.npy"
    result = clopt.minimize(x0=x0, iters=25, trace=True, out=str(out))
    assert result.x.shape == (30, 7, 3)
    assert_same(result, x_cli, summary)
    assert np.array_equal(np.load(out), x_cli)
    assert_same(clopt.minimize(x0=str(path), iters=25, trace=True), x_cli, summary)


def test_barzilai_borwein_step_same_as_cli(run_cli):
    """step="bb1" is --step bb1: the same bits, and fewer iterations than the fixed step."""
    flags = ["--objective", "ellipsoid", "--param", "cond=1e3", "--precision", "double",
             "--dim", "400", "--lr", "1e-3", "--iters", "3000", "--target", "1e-6"]
    x_cli, summary = run_cli(*flags, "--step", "bb1")
    kw = dict(objective="ellipsoid", params={"cond": 1e3}, precision="double", dim=400,
              lr=1e-3, iters=3000, target=1e-6)
    result = clopt.minimize(step="bb1", trace=True, **kw)
    assert result.stop == "target"
    assert np.array_equal(result.x, x_cli)
    assert result.loss == summary["trace"]["loss"][-1]
    assert result.iterations == summary["iterations"]
    assert result.evaluations == summary["evaluations"]
    assert np.array_equal(result.trace["lr"], summary["trace"]["lr"])
    fixed = clopt.minimize(step="fixed", **kw)
    assert fixed.iterations > 4 * result.iterations
    with pytest.raises(clopt.BadInput, match="fixed or bb1 or bb2"):
        clopt.minimize(dim=10, step="bb3")
    with pytest.raises(clopt.BadInput):
        clopt.minimize(dim=10, optimizer="adam", step="bb1")


@pytest.mark.parametrize("optimizer", ["lbfgs", "cg"])
def test_no_learning_rate_is_none_as_the_cli_writes_null(optimizer, run_cli):
    """lbfgs and cg take their steps from the line search: result.lr and final_lr are None
    (the library's NaN), as the CLI's JSON has "lr": null; the bits are the CLI's."""
    x_cli, summary = run_cli("--dim", "300", "--optimizer", optimizer, "--iters", "10")
    result = clopt.minimize(dim=300, optimizer=optimizer, iters=10, trace=True)
    assert summary["lr"] is None
    assert result.lr is None and result.final_lr is None
    assert_same(result, x_cli, summary)
    # gd keeps its numbers.
    gd = clopt.minimize(dim=300, iters=2, lr=0.25)
    assert gd.lr == 0.25 and gd.final_lr == 0.25
