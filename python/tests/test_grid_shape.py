"""Grid objectives from Python: shape= as the CLI's --shape, a 2-D x0 as the grid's shape,
and the TV denoising example (examples/tv_denoise) on its shipped picture."""

import os

import numpy as np
import pytest

import clopt
from conftest import REPO

EXAMPLE = os.path.join(REPO, "examples", "tv_denoise")
ITERS = 15  # a few L-BFGS iterations: enough to see the loss fall and the PSNR rise


def assert_same(result, x_cli, summary):
    """The CLI's bits (test_cli_equal's check, less lr: lbfgs has none, NaN here and null
    in the CLI's JSON)."""
    assert result.x.dtype == x_cli.dtype and result.x.shape == x_cli.shape
    assert np.array_equal(result.x, x_cli)
    assert result.iterations == summary["iterations"]
    assert result.stop == summary["stop_reason"]
    for key in ("iteration", "loss", "grad_norm"):
        assert np.array_equal(result.trace[key], summary["trace"][key]), key


def psnr(reference, image):
    mse = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return 10 * np.log10(1 / mse)


@pytest.fixture(scope="module")
def picture():
    clean = np.load(os.path.join(EXAMPLE, "clean.npy"))
    noisy_path = os.path.join(EXAMPLE, "noisy.npy")
    return clean, np.load(noisy_path), noisy_path


def test_tv_denoise_example_denoises(run_cli, picture, tmp_path):
    """The example's command, for a few iterations: the loss falls and the PSNR against
    the clean picture rises; shape= with a flat x0 and a 2-D x0 alone give the CLI's bits
    in the grid's shape (without the shape, a flat x0 would be a 1-D grid: other bits)."""
    clean, noisy, noisy_path = picture
    assert noisy.shape == clean.shape == (128, 128) and noisy.dtype == np.float32
    x_cli, summary = run_cli("--objective", "tv_denoise", "--shape", "128,128",
                             "--param", "image=" + noisy_path, "--param", "lambda=0.06",
                             "--init", noisy_path, "--optimizer", "lbfgs",
                             "--iters", str(ITERS))
    assert x_cli.shape == (128, 128)
    loss = summary["trace"]["loss"]
    assert loss[-1] < 0.7 * loss[0]
    assert psnr(clean, x_cli) > psnr(clean, noisy) + 2.0

    flat = clopt.minimize("tv_denoise", x0=noisy.reshape(-1), shape=(128, 128),
                          params={"image": noisy_path, "lambda": 0.06}, optimizer="lbfgs",
                          iters=ITERS, trace=True)
    assert flat.x.shape == (128, 128)
    assert_same(flat, x_cli, summary)
    implied = clopt.minimize("tv_denoise", x0=noisy,
                             params={"image": noisy, "lambda": "0.06"}, optimizer="lbfgs",
                             iters=ITERS, trace=True)
    assert implied.x.shape == (128, 128)
    assert_same(implied, x_cli, summary)


def test_shape_as_text_and_with_dim():
    """"128,128" as --shape spells it, and a dim that agrees, fill the same options."""
    from clopt._problem import Problem
    for kw in (dict(shape="128,128"), dict(shape=(128, 128), dim=16384),
               dict(shape=[np.int64(128), 128.0])):
        p = Problem(None, "tv_denoise", **kw)
        assert p.opts.dim == 16384 and p.opts.n_axes == 2
        assert tuple(p.opts.shape[:2]) == (128, 128)


@pytest.mark.parametrize("kw, words", [
    (dict(shape=(4, 4), dim=10), "holds 16 elements but dim is 10"),
    (dict(shape=(2, 3, 4, 5)), "give 1 to 3 axis lengths"),
    (dict(shape=()), "give 1 to 3 axis lengths"),
    (dict(shape=(4, 0)), "shape=0"),
    (dict(shape="4,x"), "shape='x'"),
    (dict(shape=(2, 3), x0=np.zeros((3, 2))), "x0 has shape (3, 2) but shape is (2, 3)"),
    (dict(shape=(2, 3), x0=np.zeros(5)), "x0 holds 5 elements but shape (2, 3) holds 6"),
    (dict(shape=(2, 3), init=np.zeros((3, 2))), "init has shape (3, 2) but shape is (2, 3)"),
])
def test_bad_shape_says_what_to_do(kw, words):
    with pytest.raises(clopt.BadInput) as exc:
        clopt.minimize("tv_denoise", iters=0, **kw)
    assert words in str(exc.value)


def test_grid_data_array_in_another_shape_is_refused(picture):
    """A 2-D image array with a flat x0 and no shape=: as the CLI with the same files (exit
    2), not a silent grid of one axis (the array used to be flattened)."""
    _, noisy, _ = picture
    with pytest.raises(clopt.BadInput) as exc:
        clopt.minimize("tv_denoise", x0=noisy.reshape(-1), params={"image": noisy}, iters=0)
    assert "another shape than shape" in str(exc.value)
    r = clopt.minimize("tv_denoise", x0=noisy.reshape(-1), shape=(128, 128),
                       params={"image": noisy}, iters=0)
    assert r.x.shape == (128, 128)


def test_check_gradient_on_a_grid():
    """check_gradient(shape=) as `clopt check --shape`: tv_denoise's gradient on a 2-D grid
    (samples on its faces, edges and corners) agrees with finite differences."""
    r = clopt.check_gradient("tv_denoise", shape=(5, 7), samples=35, seed=3)
    assert r.n == 35 and r.checked == 35 and r.passed, r
    with pytest.raises(clopt.BadInput):
        clopt.check_gradient("tv_denoise", shape=(5, 7), dim=36)
