"""The locked environment: setup.py and constraints.txt agree, the installed
stack loads (torchaudio's compiled library included), and a torch/torchaudio
mismatch is caught by the environment check before any long work starts."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from importlib import metadata
from pathlib import Path

import pytest

from speechbrain_probe.environment import (
    check_environment,
    load_problems,
    lock_disagreements,
    lock_problems,
    read_lock,
    version_problems,
)

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "constraints.txt"


def _setup_requirements() -> list[str]:
    """install_requires and every extra of setup.py, read without running it."""
    tree = ast.parse((REPO / "setup.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = ast.literal_eval(node.value)
    extras = [r for reqs in found["EXTRAS_REQUIRE"].values() for r in reqs]
    return found["INSTALL_REQUIRES"] + extras


def test_setup_py_and_the_lock_agree():
    requirements = _setup_requirements()
    assert any(r.startswith("torchaudio==") for r in requirements)
    assert lock_disagreements(requirements, read_lock(LOCK)) == []


def test_the_agreement_check_sees_a_drifted_lock():
    pins = read_lock(LOCK)
    drifted = dict(pins, torchaudio="2.11.1")
    lines = lock_disagreements(_setup_requirements(), drifted)
    assert any(line.startswith("torchaudio: locked 2.11.1, outside") for line in lines)
    assert any("they must be one release" in line for line in lines)


def test_build_requirements_are_exact():
    text = (REPO / "pyproject.toml").read_text()
    requires = re.search(r"^requires = \[(.*)\]$", text, re.M).group(1)
    for item in re.findall(r'"([^"]+)"', requires):
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", item), item


def test_this_environment_is_the_lock():
    """The suite runs in the environment the README's commands build."""
    assert len(read_lock(LOCK)) > 50  # the whole environment, not just the top level
    assert [p.describe() for p in lock_problems(LOCK)] == []


def test_the_whole_stack_loads_including_libtorchaudio():
    import torch
    import torchaudio

    assert version_problems() == []
    assert load_problems() == []
    assert torchaudio._extension._IS_TORCHAUDIO_EXT_AVAILABLE
    # an op of the compiled library, not just the Python package
    assert isinstance(torch.ops._torchaudio.is_align_available(), bool)
    assert torch.__version__.split("+")[0] == torchaudio.__version__.split("+")[0]


def test_check_in_a_fresh_process_against_the_lock():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "speechbrain_probe.environment",
            "--lock",
            str(LOCK),
            "--strict",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "environment OK" in run.stdout and "torchaudio 2.11.0" in run.stdout


def _broken_library(path: Path) -> None:
    """A shared library that fails to load the way torchaudio 2.11.1 does with
    torch 2.11.0 (an undefined torch symbol); garbage bytes without a compiler."""
    source = path.with_suffix(".c")
    source.write_text(
        "extern const char *torch_exception_get_what_without_backtrace(void *);\n"
        "const char *probe(void *e) {\n"
        "  return torch_exception_get_what_without_backtrace(e);\n}\n"
    )
    compiler = shutil.which("cc") or shutil.which("gcc")
    path.unlink()
    if compiler:
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-o", str(path), str(source)], check=True
        )
    else:  # pragma: no cover - the CI machine has gcc
        path.write_bytes(b"not an ELF file")


@pytest.fixture(scope="module")
def mismatched_venv(tmp_path_factory) -> Path:
    """A venv that sees this environment but has torchaudio 2.11.1, built for
    another torch, in front of it: version metadata and compiled library."""
    root = tmp_path_factory.mktemp("mismatch")
    venv = root / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True
    )
    site = next((venv / "lib").glob("python*/site-packages"))
    ours = sysconfig.get_paths()["purelib"]
    (site / "zz_project_env.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n"
    )
    audio = Path(metadata.distribution("torchaudio").locate_file("torchaudio"))
    shutil.copytree(
        audio, site / "torchaudio", ignore=shutil.ignore_patterns("__pycache__")
    )
    found = metadata.version("torchaudio")
    info = Path(metadata.distribution("torchaudio")._path)
    fake = site / info.name.replace(found, "2.11.1")
    shutil.copytree(info, fake)
    meta = fake / "METADATA"
    meta.write_text(re.sub(r"(?m)^Version: .*$", "Version: 2.11.1", meta.read_text()))
    for library in (site / "torchaudio" / "lib").glob("libtorchaudio*.so"):
        _broken_library(library)
    return venv


def _run(venv: Path, *args, cwd=REPO) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items() if k != "SBPROBE_ENV_NOTED"}
    started = time.monotonic()
    run = subprocess.run(
        [str(venv / "bin" / "python"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    return run, time.monotonic() - started


def _assert_names_the_mismatch(text: str) -> None:
    assert "torchaudio 2.11.1 is installed, 2.11.0 is expected" in text
    assert "torch 2.11.0" in text  # what it must match
    assert "pip install 'torchaudio==2.11.0'" in text  # the command that fixes it
    assert "does not load" in text and "libtorchaudio" in text
    assert "Traceback" not in text


def test_mismatch_is_named_by_the_environment_check(mismatched_venv):
    run, seconds = _run(mismatched_venv, "-m", "speechbrain_probe.environment")
    assert run.returncode == 1
    _assert_names_the_mismatch(run.stderr)
    print(f"environment check stopped in {seconds:.1f} s")


def test_mismatch_stops_the_demo_before_the_corpus(mismatched_venv, tmp_path):
    data, results = tmp_path / "data", tmp_path / "results"
    run, seconds = _run(
        mismatched_venv,
        "-m",
        "speechbrain_probe.demo",
        "--quick",
        "--data-dir",
        str(data),
        "--results-dir",
        str(results),
    )
    assert run.returncode == 1
    _assert_names_the_mismatch(run.stderr)
    assert not data.exists() and not results.exists()  # no long work began
    print(f"demo stopped in {seconds:.1f} s")


@pytest.mark.parametrize(
    "script",
    [
        "recipes/Synthetic/ASR/CTC/train_asr.py",
        "recipes/Synthetic/SpeakerRec/ECAPA/train_ecapa.py",
        "recipes/Synthetic/Probe/Highway/train_probe.py",
        "recipes/Synthetic/Probe/Highway/evaluate.py",
        "recipes/LibriSpeech/ASR/CTC/train_asr.py",
    ],
)
def test_mismatch_stops_every_recipe_at_start(mismatched_venv, tmp_path, script):
    run, _ = _run(mismatched_venv, str(REPO / script), "hparams.yaml", cwd=tmp_path)
    assert run.returncode == 1
    _assert_names_the_mismatch(run.stderr)


def test_every_recipe_script_checks_the_environment_before_speechbrain_loads():
    """The scripts run above stop on a broken install; every other recipe
    script does the same thing first (read, not run: each run costs seconds)."""
    scripts = sorted(REPO.glob("recipes/**/*.py"))
    assert len(scripts) >= 8
    for script in scripts:
        lines = script.read_text(encoding="utf-8").splitlines()
        code = [
            i for i, line in enumerate(lines) if line.startswith(("import ", "from "))
        ]
        first_sb = next(
            i
            for i in code
            if re.match(r"(import|from) (speechbrain|torch)\b", lines[i])
        )
        starts = [
            i for i, line in enumerate(lines) if line.startswith("check_environment()")
        ]
        call = starts[0] if starts else -1
        assert 0 <= call < first_sb, f"{script}: check_environment() must run first"


def test_a_package_off_the_lock_is_a_note_or_with_strict_a_problem(
    tmp_path, capsys, monkeypatch
):
    lock = tmp_path / "constraints.txt"
    lock.write_text("numpy==0.0.1\n")
    monkeypatch.setenv("SBPROBE_ENV_NOTED", "")
    notes = check_environment(lock, loads=False)
    assert notes and "numpy" in notes[-1] and "(lock 0.0.1)" in notes[-1]
    assert "note:" in capsys.readouterr().err
    assert check_environment(lock, loads=False) == []  # said once per run
    with pytest.raises(SystemExit) as stop:
        check_environment(lock, strict=True, loads=False)
    found = metadata.version("numpy")
    assert f"numpy {found} is installed, 0.0.1 is expected" in str(stop.value)
