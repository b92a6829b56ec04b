"""The Makefile's install logic, with a stand-in Python that logs what it is
asked to do: a new venv is built from the lock and stamped only after its
check passes; a sound venv is kept; a broken one, or one that a killed install
left behind, is made anew instead of trusted."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Stands in for python3 and for the venv's python. VENV_BROKEN in a venv makes
# its environment check fail; PIP_FAILS makes pip fail (an install killed half-way).
STUB = r"""#!/bin/bash
echo "$0 $*" >> "$STUB_LOG"
case "$1 $2" in
  "-c import"*) echo 3.11 ;;
  "--version ") echo "Python 3.11.7" ;;
  "-m venv") d="${@: -1}"; mkdir -p "$d/bin"; cp "$0" "$d/bin/python" ;;
  "-m pip") [ -n "$PIP_FAILS" ] && exit 1; true ;;
  "-m speechbrain_probe.environment")
    [ -e "$(dirname "$0")/../VENV_BROKEN" ] && { echo "broken" >&2; exit 1; }
    echo "environment OK" ;;
esac
"""


@pytest.fixture
def project(tmp_path):
    if shutil.which("make") is None:  # pragma: no cover - CI has make
        pytest.fail("make is required for the Makefile tests")
    for name in ("Makefile", "setup.py", "constraints.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    python = tmp_path / "stub-python"
    python.write_text(STUB)
    python.chmod(0o755)
    return tmp_path


def make(project: Path, *args, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = project / "calls.log"
    log.unlink(missing_ok=True)
    run = subprocess.run(
        ["make", "--no-print-directory", *args, f"PYTHON={project / 'stub-python'}"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "STUB_LOG": str(log), **env},
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    # what the base and the venv's python were asked, less make's own version
    # queries (each make, the inner one too, reads the Python version)
    asked = [c.split(" ", 1)[1] for c in calls]
    return run, [a for a in asked if not a.startswith(("-c import", "--version"))]


def test_a_new_venv_is_built_from_the_lock_and_stamped_after_its_check(project):
    run, calls = make(project, "install")
    assert run.returncode == 0, run.stderr
    assert calls == [
        "-m venv .venv",
        "-m pip install -q --disable-pip-version-check pip==26.3",
        "-m pip install -q -c constraints.txt -e .[test]",
        "-m speechbrain_probe.environment --lock constraints.txt --strict",
    ]
    assert (project / ".venv" / ".installed").read_text().strip()


def test_a_sound_venv_is_checked_and_kept(project):
    make(project, "install")
    run, calls = make(project, "install")
    assert run.returncode == 0
    assert "matches constraints.txt" in run.stdout
    assert (
        calls[-1]
        == "-m speechbrain_probe.environment --lock constraints.txt --strict --quiet"
    )
    assert not any("venv" in c or "pip" in c for c in calls)


def test_a_venv_that_fails_its_check_is_made_anew(project):
    make(project, "install")
    (project / ".venv" / "VENV_BROKEN").touch()  # e.g. files of a package removed
    run, calls = make(project, "install")
    assert run.returncode == 0, run.stderr
    assert "making it anew" in run.stdout
    assert "-m venv .venv" in calls and not (project / ".venv" / "VENV_BROKEN").exists()


def test_an_install_killed_half_way_is_not_trusted_next_time(project):
    run, _ = make(project, "install", PIP_FAILS="1")
    assert run.returncode != 0
    assert not (project / ".venv" / ".installed").exists()  # no stamp, nothing trusted
    run, calls = make(project, "install")
    assert run.returncode == 0, run.stderr
    assert "-m pip install -q -c constraints.txt -e .[test]" in calls


def test_a_changed_lock_rebuilds_the_venv(project):
    make(project, "install")
    with open(project / "constraints.txt", "a") as handle:
        handle.write("six==1.16.0\n")
    run, calls = make(project, "install")
    assert run.returncode == 0
    assert "-m venv .venv" in calls


def test_a_missing_python_stops_with_the_fix(project):
    run = subprocess.run(
        ["make", "install", "PYTHON=/nonexistent/python3"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "/nonexistent/python3 does not run: install Python 3.11" in run.stderr
