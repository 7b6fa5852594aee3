"""bench/time_to_solution.py --quick: the smoke test of the time-to-solution benchmark gives a
summary row with numbers and a row per run, and writes them to --markdown."""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "bench", "time_to_solution.py")
# reached · seconds · evaluations, as a summary cell writes them.
CELL = re.compile(r"^(yes|no \([a-z_ ]+\)) · [0-9.e+-]+ s · [0-9,]+$")


def test_quick_gives_a_table_with_numbers(cli, tmp_path):
    md = tmp_path / "tts.md"
    # scipy (when installed) sets the target; clopt lbfgs in double only: one kernel build.
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--clopt", cli, "--methods",
                           "scipy,lbfgs", "--precision", "double", "--markdown", str(md)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    text = md.read_text()
    assert "- machine: " in text and "- load average after: " in text
    summary = [line for line in text.splitlines() if line.startswith("| laplacian | 1e3 |")]
    # One summary row, then one row per run.
    cells = [c.strip() for c in summary[0].strip("|").split("|")]
    assert len(cells) == 6, summary[0]
    # The target, or (scipy slowed down by load) scipy's loss at 3 s; below the
    # loss at the start, 0.5.
    target = float(cells[2].split()[0])
    assert 0 < target < 0.5, text
    assert cells[4] and CELL.match(cells[4]), text
    runs = [line for line in summary[1:] if "| clopt lbfgs |" in line]
    assert len(runs) == 1, text
    run = [c.strip() for c in runs[0].strip("|").split("|")]
    # precision, stop, evaluations, iterations, seconds, wall, loss
    assert run[3] == "double"
    assert int(run[5].replace(",", "")) > 0 and int(run[6].replace(",", "")) >= 0, text
    assert float(run[7]) > 0 and float(run[8]) >= float(run[7]), text
    assert float(run[9]) > 0, text
    if run[4].startswith("target"):
        # The loss is printed to 6 digits.
        assert float(run[9]) <= target * (1 + 1e-5)
