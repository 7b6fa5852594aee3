"""minimize() beyond the CLI comparison: x0 round trips, callbacks, Ctrl-C, traces,
checkpoints and the output file."""

import os
import signal
import subprocess

import numpy as np
import pytest

import clopt


def test_x0_round_trip_float():
    x0 = np.random.default_rng(1).uniform(-3, 3, 1234).astype(np.float32)
    r = clopt.minimize(x0=x0, iters=0)
    assert r.x.dtype == np.float32
    assert np.array_equal(r.x, x0)
    assert r.iterations == 0 and r.stop == "max_iters"
    # sphere: L = sum x^2 (summed in double), ||g|| = 2 ||x||
    assert r.loss == pytest.approx(float(np.sum(x0.astype(np.float64) ** 2)), rel=1e-6)
    assert r.grad_norm == pytest.approx(2 * np.linalg.norm(x0.astype(np.float64)), rel=1e-6)


# Double runs use rosenbrock, the double kernel variant the CLI comparison builds already.
def test_x0_round_trip_double():
    x0 = np.random.default_rng(1).uniform(-3, 3, 1234)
    r = clopt.minimize("rosenbrock", x0=x0, precision="double", iters=0)
    assert r.x.dtype == np.float64
    assert np.array_equal(r.x, x0)
    x = x0
    expect = np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    assert r.loss == pytest.approx(expect, rel=1e-12)


def test_x0_shape_is_kept():
    x0 = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    r = clopt.minimize(x0=x0, iters=1, lr=0.25)
    assert r.x.shape == (3, 4) and r.x.dtype == np.float32
    assert np.array_equal(r.x, 0.5 * x0)  # one gd step of 0.25 on the sphere halves x
    # A Fortran-order array is a logical array too: its elements go in C order.
    xf = np.asfortranarray(x0)
    assert np.array_equal(clopt.minimize(x0=xf, iters=1, lr=0.25).x, 0.5 * x0)
    # A vector stays a vector, and a column keeps its two axes.
    assert clopt.minimize(x0=np.ones(5), iters=0).x.shape == (5,)
    assert clopt.minimize(x0=np.ones((5, 1)), iters=0).x.shape == (5, 1)


def test_data_parameter_of_any_shape():
    t = (np.arange(24, dtype=np.float64).reshape(4, 6) * 0.25) - 2
    r = clopt.minimize("shifted_sphere", params={"target": t}, init="zeros", lr=0.5, iters=1,
                       precision="double")
    assert r.x.shape == (24,)  # no x0 array: a vector
    assert np.array_equal(r.x, t.reshape(-1))


def test_x0_converted_between_precisions():
    x0 = np.array([0.1, -2.5, 3.0])  # float64 into a float run
    r = clopt.minimize(x0=x0, iters=0)
    assert r.x.dtype == np.float32
    assert np.array_equal(r.x, x0.astype(np.float32))
    r = clopt.minimize("rosenbrock", x0=[1, 2, 3], precision="double", iters=0)
    assert r.x.dtype == np.float64 and np.array_equal(r.x, [1.0, 2.0, 3.0])


def test_init_specs():
    assert np.all(clopt.minimize(dim=50, init="const:3", iters=0).x == 3)
    assert np.all(clopt.minimize(dim=50, x0="zeros", iters=0).x == 0)
    u = clopt.minimize(dim=5000, init="uniform:2", iters=0).x
    assert u.min() >= -2 and u.max() < 2 and u.std() > 0.5
    a = clopt.minimize(dim=100, seed=3, iters=0).x
    b = clopt.minimize(dim=100, seed=3, iters=0).x
    c = clopt.minimize(dim=100, seed=4, iters=0).x
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_callback_cancels():
    seen = []

    def callback(p):
        seen.append(p)
        return p.iteration >= 10

    r = clopt.minimize(dim=1000, iters=1000, callback=callback)
    assert r.stop == "cancelled"
    assert 10 <= r.iterations < 1000
    assert [p.iteration for p in seen[:11]] == list(range(11))
    assert seen[0].loss > seen[10].loss > 0
    assert all(p.lr == 0.1 for p in seen)


def test_callback_exception_propagates():
    def callback(p):
        if p.iteration == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here") as info:
        clopt.minimize(dim=100, iters=500, callback=callback)
    assert info.value.result.stop == "cancelled"
    assert info.value.result.iterations < 500


def test_ctrl_c_stops_keeps_theta_and_restores_handler():
    before = signal.getsignal(signal.SIGINT)

    def callback(p):
        if p.iteration == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt) as info:
        clopt.minimize(dim=1000, iters=100000, callback=callback)
    result = info.value.result
    assert result.stop == "cancelled"
    assert 5 <= result.iterations < 100000
    assert result.x.shape == (1000,) and np.all(np.isfinite(result.x))
    assert signal.getsignal(signal.SIGINT) is before


def test_trace_and_loss_every():
    r = clopt.minimize(dim=200, iters=23, loss_every=5, trace=True)
    t = r.trace
    assert list(t["iteration"]) == [0, 5, 10, 15, 20, 23]
    assert t["loss"][-1] == r.loss and t["grad_norm"][-1] == r.grad_norm
    assert np.all(np.diff(t["loss"]) < 0)
    assert set(t) == {"iteration", "loss", "grad_norm", "lr", "seconds"}


def test_schedule_lr_in_trace():
    r = clopt.minimize(dim=100, iters=20, schedule="step:10:0.5", trace=True)
    assert r.trace["lr"][0] == 0.1 and r.trace["lr"][15] == 0.05
    assert r.final_lr == 0.025 and r.lr == 0.1  # the rate at iteration 20: two halvings


def test_checkpoint_resume_and_out(tmp_path):
    ckpt, out = str(tmp_path / "run.ckpt"), str(tmp_path / "x.npy")
    whole = clopt.minimize(dim=300, optimizer="adam", iters=40)
    first = clopt.minimize(dim=300, optimizer="adam", iters=15, checkpoint=ckpt)
    assert os.path.exists(ckpt) and first.iterations == 15
    rest = clopt.minimize(dim=300, optimizer="adam", iters=40, resume=ckpt, out=out)
    assert rest.iterations == 40
    assert np.array_equal(rest.x, whole.x)
    assert np.array_equal(np.load(out), whole.x)


def test_a_failed_checkpoint_raises_once_out_is_written(tmp_path):
    """A checkpoint that cannot be written (a full disk) does not stop the run: x and out
    are there, then clopt.Error says what was lost, with the result attached."""
    full = tmp_path / "full"
    full.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(full)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        out = tmp_path / "x.npy"
        with pytest.raises(clopt.Error, match="checkpoint") as caught:
            clopt.minimize(dim=100000, optimizer="adam", iters=20,
                           checkpoint=str(full / "ck"), out=str(out))
        assert caught.value.result.iterations == 20
        assert np.array_equal(np.load(out), caught.value.result.x)
    finally:
        subprocess.run(["umount", str(full)], check=False)


def test_target():
    r = clopt.minimize(dim=100, iters=1000, target=1e-3)
    assert r.stop == "target" and r.loss <= 1e-3 and r.success


def test_result_object():
    r = clopt.minimize(dim=1000, iters=5)
    assert r.fun == r.loss and r.nit == r.iterations == 5
    assert r["x"] is r.x
    assert r.seconds >= 0 and r.gbytes_per_second >= 0
    assert r.objective == "sphere" and r.optimizer == "gd" and r.n == 1000
    assert "knobs" in repr(r)


def test_lbfgs_and_cg_keywords():
    # The quasi-Newton options by their long names, words as the CLI's; evaluations back.
    for optimizer, extra in (("lbfgs", {"history": 5, "line_search": "wolfe"}),
                             ("cg", {"cg_beta": "fr", "c2": 0.2})):
        r = clopt.minimize("rosenbrock", dim=50, x0="zeros", optimizer=optimizer,
                           precision="double", iters=3000, gtol=1e-8, **extra)
        assert r.stop == "gtol", (optimizer, r.stop)
        assert r.evaluations >= r.iterations > 0
        assert r.nfev == r.evaluations
        r = clopt.minimize("rosenbrock", dim=50, x0="zeros", optimizer=optimizer,
                           precision="double", iters=3000, max_evals=17, **extra)
        assert (r.stop, r.evaluations) == ("max_evals", 17), optimizer
    with pytest.raises(clopt.BadInput, match="armijo or wolfe"):
        clopt.minimize(dim=10, optimizer="lbfgs", line_search="exact")
    with pytest.raises(clopt.BadInput, match="history"):
        clopt.minimize(dim=10, optimizer="gd", history=3)
