"""devices=: several PoCL devices in one process give the bits of one device."""

import json
import os
import subprocess
import sys

import pytest

import clopt

# PoCL reads POCL_DEVICES when the platform is first opened, so the two-device runs live in
# a child process of their own.
_CHILD = r"""
import json, sys
import clopt
# Tiles of 64 elements, shards of at most 2000 bytes: 5003 elements make 79 tiles in
# several shards on each device, and the stencil's halos cross between the devices.
kw = dict(dim=5003, optimizer="adam", lr=1e-2, iters=30, init="normal", seed=7,
          tune="wg=16,epw=4", max_shard_bytes=2000, trace=True)
one = clopt.minimize("laplacian", **kw)
two = clopt.minimize("laplacian", devices=[0, 1], **kw)
json.dump({"same_x": one.x.tobytes() == two.x.tobytes(),
           "same_loss": one.trace["loss"].tobytes() == two.trace["loss"].tobytes(),
           "devices": [one.devices, two.devices], "shards": two.shards,
           "loss": [one.loss, two.loss]}, sys.stdout)
"""


def test_two_devices_equal_one_device_bit_for_bit():
    env = dict(os.environ, POCL_DEVICES="pthread pthread")
    env.pop("CLOPT_DEVICE", None)
    proc = subprocess.run([sys.executable, "-c", _CHILD], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    assert got["devices"] == [1, 2]
    assert got["shards"] >= 2
    assert got["same_x"] and got["same_loss"], got


def test_devices_with_device_is_refused():
    with pytest.raises(clopt.BadInput, match="device= and devices="):
        clopt.minimize(dim=10, iters=1, device=0, devices="all")


@pytest.mark.parametrize("bad", [[], [-1], 1.5, ["a"]])
def test_bad_devices_are_refused(bad):
    with pytest.raises(clopt.BadInput, match="devices="):
        clopt.minimize(dim=10, iters=1, devices=bad)


def test_bench_does_not_take_devices():
    with pytest.raises(clopt.BadInput, match="minimize"):
        clopt.bench(dim=10, iters=1, devices="all")
