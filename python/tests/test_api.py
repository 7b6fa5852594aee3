"""devices, objectives, check_gradient, bench, tune, and the ctypes structures against
the C header's layout."""

import ctypes
import os
import shutil
import subprocess

import numpy as np
import pytest

import clopt
from clopt import _ffi

from conftest import REPO


def test_version():
    assert clopt.version().split(".")[:2] == ["0", "1"]


def test_devices():
    devs = clopt.devices()
    assert devs, "no OpenCL device"
    for k, d in enumerate(devs):
        assert d["index"] == k
        assert d["name"] and d["platform"]
        assert d["kind"] in ("cpu", "gpu", "other")
        assert d["compute_units"] >= 1
        assert d["global_mem_bytes"] >= d["max_alloc_bytes"] > 0
        assert isinstance(d["has_fp64"], bool)


def test_device_selection():
    name = clopt.devices()[0]["name"]
    assert clopt.minimize(dim=1000, iters=1, device=0).device == name
    with pytest.raises(clopt.DeviceError):
        clopt.minimize(dim=1000, iters=1, device="no such device anywhere")


def test_objectives_and_optimizers():
    objs = {o["name"]: o for o in clopt.objectives()}
    assert {"sphere", "rosenbrock", "ellipsoid", "shifted_sphere"} <= set(objs)
    for o in objs.values():
        assert o["formula"] and o["minimum"] is not None
    assert "cond" in objs["ellipsoid"]["params"]
    assert {"gd", "momentum", "nesterov", "adam", "adamw", "rmsprop",
            "adagrad"} <= set(clopt.optimizers())


# One objective: every kernel build costs seconds to minutes on a cold PoCL cache.
@pytest.mark.parametrize("objective", ["rosenbrock"])
def test_check_gradient_builtin(objective):
    r = clopt.check_gradient(objective, dim=64, samples=64)
    assert r.checked == 64
    assert r.passed
    assert r.worst_error <= r.tolerance
    assert r.worst_error < (1e-6 if r.precision == "double" else 1e-2)


def test_check_gradient_user_file(quartic):
    r = clopt.check_gradient(quartic, dim=32, samples=8, params={"a": 3}, seed=5)
    assert r.checked == 8 and r.passed


def test_check_gradient_catches_a_wrong_gradient():
    wrong = ("real clopt_fdf(real x, ulong i, real *g)\n"
             "{ (void)i; *g = 3 * x; return x * x; }\n")
    r = clopt.check_gradient(wrong, dim=16, samples=16)
    assert not r.passed
    assert r.worst_error > 0.1


def test_bench():
    b = clopt.bench(dim=1 << 16, reps=2, iters=5)
    assert b.copy_gbytes_per_second > 0 and b.scale_gbytes_per_second > 0
    assert b.step_gbytes_per_second > 0 and b.step_seconds > 0
    assert b.iterations_per_rep == 5 and b.reps == 2
    assert b.bytes_per_element == 8  # gd in float: read and write theta
    assert b.ratio_to_scale > 0
    assert b.knobs.startswith("wg=")
    with pytest.raises(clopt.BadInput, match="'out'"):
        clopt.bench(dim=16, out="x.npy")


def test_tune_store_and_use(tmp_path):
    # One candidate, the default knobs themselves: the search, the check against the
    # reference and the store, without a new kernel build (tens of seconds on PoCL).
    db = str(tmp_path / "tuning.json")
    seen = []
    t = clopt.tune(dim=1 << 14, space="wg=16,epw=4096,vw=16", reps=1, iters=3, store=True,
                   tuning_db=db, callback=lambda c: seen.append(c))
    assert t.count == 1 and t.tried == 1 and len(t.candidates) == 1
    assert len(seen) == 1 and seen[0]["index"] == 1 and seen[0]["count"] == 1
    assert t.candidates[0]["ok"], t.candidates[0]["note"]
    assert "bit-identical" in t.candidates[0]["note"]
    assert t.gbytes_per_second > 0 and t.default_gbytes_per_second > 0
    assert t.stored == db and os.path.exists(db)
    # minimize (and the CLI) now take the knobs from that database; tune= overrides it.
    r = clopt.minimize(dim=1 << 14, iters=3, tuning_db=db)
    assert r.knobs_source.startswith("tuning database " + db)
    assert r.knobs == t.knobs
    r = clopt.minimize(dim=1 << 14, iters=3, tuning_db=db, tune="wg=16")
    assert r.knobs.startswith("wg=16,") and r.knobs_source == "tune"
    with pytest.raises(clopt.BadInput):
        clopt.tune(dim=64, space="wg=3x")


# --- the ctypes structures have the C layout -----------------------------------------------

STRUCTS = {
    "clopt_device_info": _ffi.DeviceInfo,
    "clopt_context_options": _ffi.ContextOptions,
    "clopt_cache_stats": _ffi.CacheStats,
    "clopt_knobs": _ffi.Knobs,
    "clopt_param": _ffi.Param,
    "clopt_progress": _ffi.Progress,
    "clopt_options": _ffi.Options,
    "clopt_result": _ffi.Result,
    "clopt_check_options": _ffi.CheckOptions,
    "clopt_check_result": _ffi.CheckResult,
    "clopt_bandwidth": _ffi.Bandwidth,
    "clopt_step_timing": _ffi.StepTiming,
    "clopt_tune_candidate": _ffi.TuneCandidate,
    "clopt_tune_progress": _ffi.TuneProgress,
    "clopt_tune_options": _ffi.TuneOptions,
    "clopt_tune_result": _ffi.TuneResult,
}


def test_struct_layout_matches_header(tmp_path):
    """A C program prints sizeof and every field's offset and size from clopt.h; the
    ctypes mirror must agree (skipped without a C compiler or the header)."""
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    include = os.path.join(REPO, "include")
    if not cc or not os.path.exists(os.path.join(include, "clopt.h")):
        pytest.skip("no C compiler or include/clopt.h")
    lines = ["#include <clopt.h>", "#include <stdio.h>", "#include <stddef.h>",
             "int main(void) {"]
    for cname, cls in STRUCTS.items():
        lines.append('printf("%s . %%zu %%zu\\n", sizeof(struct %s), _Alignof(struct %s));'
                     % (cname, cname, cname))
        for field, _ in cls._fields_:
            lines.append('printf("%s %s %%zu %%zu\\n", offsetof(struct %s, %s), '
                         'sizeof(((struct %s *)0)->%s));'
                         % (cname, field, cname, field, cname, field))
    lines += ["return 0; }"]
    src, exe = tmp_path / "layout.c", tmp_path / "layout"
    src.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([cc, "-std=c11", "-I", include, str(src), "-o", str(exe)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 and "CL/cl.h" in proc.stderr:
        pytest.skip("no OpenCL headers: " + proc.stderr.strip().splitlines()[0])
    assert proc.returncode == 0, proc.stderr
    out = subprocess.run([str(exe)], stdout=subprocess.PIPE, text=True, check=True).stdout
    checked = 0
    for line in out.splitlines():
        cname, field, a, b = line.split()
        cls = STRUCTS[cname]
        if field == ".":
            assert (ctypes.sizeof(cls), ctypes.alignment(cls)) == (int(a), int(b)), cname
        else:
            desc = getattr(cls, field)
            assert (desc.offset, desc.size) == (int(a), int(b)), "%s.%s" % (cname, field)
        checked += 1
    assert checked == sum(len(c._fields_) + 1 for c in STRUCTS.values())
