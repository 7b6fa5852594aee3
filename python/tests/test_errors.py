"""Bad input raises the right class, with the library's one-line message in the
keywords' names; divergence keeps the last finite theta."""

import os
import subprocess
import sys

import numpy as np
import pytest

import clopt


def test_hierarchy():
    assert issubclass(clopt.BadInput, clopt.Error)
    assert issubclass(clopt.DeviceError, clopt.Error)
    assert issubclass(clopt.Diverged, clopt.Error)
    assert issubclass(clopt.BadInput, ValueError)


def test_unknown_optimizer():
    with pytest.raises(clopt.BadInput) as info:
        clopt.minimize(dim=10, iters=1, optimizer="sgdx")
    assert info.value.status == -1  # CLOPT_ERR_INVALID_ARG, from the library
    assert "sgdx" in str(info.value)
    assert "options." not in str(info.value)


def test_unknown_objective():
    with pytest.raises(clopt.BadInput) as info:
        clopt.minimize("no_such_objective", dim=10, iters=1)
    assert "no_such_objective" in str(info.value)


def test_negative_lr():
    with pytest.raises(clopt.BadInput, match=r"lr=-0\.1: must be >= 0"):
        clopt.minimize(dim=10, iters=1, lr=-0.1)


def test_unknown_keyword():
    with pytest.raises(clopt.BadInput, match="'momentom'"):
        clopt.minimize(dim=10, iters=1, momentom=0.9)
    with pytest.raises(clopt.BadInput, match="'reps'.*bench"):
        clopt.minimize(dim=10, iters=1, reps=3)


def test_option_of_another_optimizer_is_refused_by_the_library():
    with pytest.raises(clopt.BadInput) as info:
        clopt.minimize(dim=10, iters=1, optimizer="adam", momentum=0.5)
    assert info.value.status == -1
    assert "momentum" in str(info.value)


def test_bad_numbers():
    with pytest.raises(clopt.BadInput, match="dim"):
        clopt.minimize(dim=0, iters=1)
    with pytest.raises(clopt.BadInput, match="iters"):
        clopt.minimize(dim=10, iters=2.5)
    with pytest.raises(clopt.BadInput, match="init"):
        clopt.minimize(dim=10, iters=1, init="gaussian:1")
    with pytest.raises(clopt.BadInput, match="precision"):
        clopt.minimize(dim=10, iters=1, precision="half")
    with pytest.raises(clopt.BadInput, match="checkpoint"):
        clopt.minimize(dim=10, iters=1, checkpoint_every=5)
    with pytest.raises(clopt.BadInput, match="tune"):
        clopt.minimize(dim=10, iters=1, tune="wg=x")


def test_missing_files(tmp_path):
    missing = str(tmp_path / "missing")
    with pytest.raises(clopt.BadInput, match="no such file"):
        clopt.minimize(missing + ".cl", dim=10, iters=1)
    with pytest.raises(clopt.BadInput):
        clopt.minimize(x0=missing + ".npy", iters=1)
    with pytest.raises(clopt.BadInput):
        clopt.minimize("shifted_sphere", params={"target": missing + ".npy"}, dim=10, iters=1)
    with pytest.raises(clopt.BadInput, match="resume"):
        clopt.minimize(dim=10, iters=1, resume=missing + ".ckpt")


def test_kernel_that_does_not_compile():
    with pytest.raises(clopt.BadInput) as info:
        clopt.minimize("real clopt_fdf(real x, ulong i, real *g) { return nope; }",
                       dim=10, iters=1)
    assert info.value.status == -7  # CLOPT_ERR_BUILD: the caller's own kernel


def test_x0_problems():
    with pytest.raises(clopt.BadInput, match="x0 holds 3 elements but dim is 4"):
        clopt.minimize(x0=np.zeros(3), dim=4, iters=1)
    with pytest.raises(clopt.BadInput, match="not a finite"):
        clopt.minimize(x0=np.array([1.0, np.nan]), iters=1)
    with pytest.raises(clopt.BadInput, match="not a finite float"):
        clopt.minimize(x0=np.array([1.0, 1e300]), iters=1)
    with pytest.raises(clopt.BadInput, match="x0 or init"):
        clopt.minimize(x0=np.zeros(3), init="zeros", iters=1)
    with pytest.raises(clopt.BadInput, match="at least one element"):
        clopt.minimize(x0=np.float32(1), iters=1)
    with pytest.raises(clopt.BadInput, match="9 axes: at most 8"):
        clopt.minimize(x0=np.zeros((1,) * 9), iters=1)


def test_fortran_order_init_file_is_refused_as_by_the_cli(tmp_path, cli):
    path = tmp_path / "f.npy"
    np.save(path, np.asfortranarray(np.ones((3, 4), dtype=np.float32)))
    with pytest.raises(clopt.BadInput, match="stored in Fortran order") as info:
        clopt.minimize(x0=str(path), iters=1)
    assert info.value.status == clopt._ffi.ERR_BAD_FILE
    proc = subprocess.run([cli, "run", "--init", str(path), "--iters", "1"],
                          stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 2 and "stored in Fortran order" in proc.stderr


def test_diverged_keeps_last_finite_theta():
    with pytest.raises(clopt.Diverged) as info:
        clopt.minimize(dim=100, lr=5.0, iters=1000)
    exc = info.value
    assert exc.status == -9
    assert "NaN/Inf" in str(exc)
    assert exc.result.stop == "diverged"
    assert exc.result.iterations < 1000
    assert exc.result.diverged_at > 0
    assert np.all(np.isfinite(exc.result.x))


def test_missing_library_is_a_clear_error_when_first_used():
    """Importing works without the library; the first call says how to point at it."""
    code = ("import clopt\n"
            "try:\n"
            "    clopt.devices()\n"
            "except clopt.Error as e:\n"
            "    print('ERROR', e)\n")
    env = dict(os.environ, CLOPT_LIBRARY="/nonexistent/libclopt.so")
    proc = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ERROR cannot load libclopt")
    assert "CLOPT_LIBRARY" in proc.stdout
