"""scripts/plot_trace.py: a PNG of a trace's loss curve when matplotlib is there, a line
saying how to install it when it is not, and one line for a malformed trace."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "scripts", "plot_trace.py")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A trace as clopt run --trace writes it, with the repeated header a resumed run appends.
TRACE = """iteration,loss,grad_norm,lr,seconds
0,1049.8645281791687,64.803226304093499,0.10000000000000001,0.001870
1,671.91330242156982,51.84258110287648,0.10000000000000001,0.001917
2,430.02451539039612,41.474064846429805,0.10000000000000001,0.001926
iteration,loss,grad_norm,lr,seconds
3,275.215691447258,33.179251980331543,0.10000000000000001,0.001930
4,176.13804203271866,26.543401525701185,0.10000000000000001,0.001934
"""


def run(args, env=None, stdin=None):
    return subprocess.run([sys.executable, SCRIPT, *args], input=stdin, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=300)


def test_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed for this Python "
                        "(apt-get install python3-matplotlib): the PNG cannot be drawn")
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    png = tmp_path / "loss.png"
    proc = run([str(trace), "--png", str(png)])
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == PNG_MAGIC
    # From standard input, with seconds below and two traces overlaid.
    png2 = tmp_path / "loss2.png"
    proc = run(["-", str(trace), "--png", str(png2), "--x", "seconds"], stdin=TRACE)
    assert proc.returncode == 0, proc.stderr
    assert png2.read_bytes()[:8] == PNG_MAGIC


def test_without_matplotlib_says_how_to_install_it(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    # A matplotlib that cannot be imported, ahead of any real one.
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "fake"))
    png = tmp_path / "loss.png"
    proc = run([str(trace), "--png", str(png)], env=env)
    assert proc.returncode == 1
    assert "apt-get install python3-matplotlib" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not png.exists()


@pytest.mark.parametrize("text, message", [
    ("a,b\n1,2\n", "not a clopt trace"),
    ("iteration,loss,grad_norm,lr,seconds\n", "no rows"),
    ("iteration,loss,grad_norm,lr,seconds\n0,1,2,3\n", "line 2: 4 fields"),
    ("iteration,loss,grad_norm,lr,seconds\n0,x,2,3,4\n", "line 2: not numbers"),
])
def test_a_malformed_trace_is_one_line(tmp_path, text, message):
    trace = tmp_path / "trace.csv"
    trace.write_text(text)
    proc = run([str(trace), "--png", str(tmp_path / "loss.png")])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
