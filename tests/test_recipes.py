"""Every row of ``tests/recipes/<Dataset>.csv`` runs end to end on tiny data,
alone, in any order.

The CSV files have SpeechBrain's recipe-test format (Task, Dataset,
Script_file, Hparam_file, Data_prep_file, Readme_file, Result_url, HF_repo,
test_debug_flags, test_debug_checks). Each row is run as SpeechBrain's
``tests/utils/recipe_tests.py`` runs it (``recipe_rows.py``): its set-up
script ``tests/recipes/setup/<script>/<hparams>`` builds what the row needs
(an exported ASR, an ECAPA model, probes, a LibriSpeech + MUSAN tree, a
user's corpus), then ``python <Script_file> <Hparam_file> <test_debug_flags>``,
and the files named by ``file_exists=[...]`` in ``test_debug_checks`` must
exist in the row's ``--output_folder``. The CSV's paths (``tests/tmp/...``)
are relative to the working folder: here one pytest temporary folder per
session, never the work tree. No row needs an earlier row: the set-ups build
into ``tests/tmp/<Dataset>/setup/``, which no row writes to.

Also checked for every row: every top-level key of the hparams file is used
by its script or the library stages it imports (or referenced inside the
file), and a mistyped override is refused.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from tests.recipe_rows import (
    COMPLETE,
    INPUTS,
    REPO,
    SETUP_FOLDER,
    build,
    output_folder,
    read_rows,
    run_row,
    session_workdir,
    setup_script,
)
from tests.recipe_scripts import load_recipe

ROWS = [pytest.param(row, id=row_id) for row_id, row in read_rows()]


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    """Where the rows run (their ``tests/tmp/...`` paths resolve here)."""
    return session_workdir(tmp_path_factory)


def _source(path: str) -> Path:
    """A file a row names: the package's own files where the package is
    imported from (the work tree, or site-packages when installed as a wheel
    and tested from outside the source tree), the rest in the repository."""
    import speechbrain_probe

    if path.startswith("speechbrain_probe/"):
        return Path(speechbrain_probe.__file__).parents[1] / path
    return REPO / path


def test_every_csv_row_names_existing_files():
    assert ROWS, "no recipe rows found in tests/recipes/*.csv"
    for param in ROWS:
        row = param.values[0]
        for column in ("Script_file", "Hparam_file", "Data_prep_file", "Readme_file"):
            assert _source(row[column]).is_file(), f"{param.id}: {column} {row[column]}"
        assert "--debug" in row["test_debug_flags"], f"{param.id}: no --debug"
    hparams = sorted(
        str(p.relative_to(REPO)) for p in REPO.glob("recipes/**/hparams/*.yaml")
    )
    listed = sorted({p.values[0]["Hparam_file"] for p in ROWS})
    assert hparams == listed, "every hparams file needs a row in tests/recipes/*.csv"


def test_every_row_has_an_executable_set_up_and_every_set_up_a_row():
    """SpeechBrain's runner writes the row's stdout.txt into its output folder
    before the recipe runs: every row needs a set-up that makes that folder."""
    scripts = {setup_script(p.values[0]) for p in ROWS}
    for script in scripts:
        assert script.is_file(), f"no set-up script {script.relative_to(REPO)}"
        assert os.access(script, os.X_OK), (
            f"{script.relative_to(REPO)} is not executable"
        )
        assert script.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    present = {p for p in SETUP_FOLDER.rglob("*") if p.is_file()}
    assert present == scripts, "a set-up script whose row is gone"
    for script in scripts:
        for name in re.findall(r"tests/tmp/\S+/setup/\S+", script.read_text()):
            assert name in INPUTS, f"{script.relative_to(REPO)}: unknown input {name}"


def test_no_row_writes_into_a_set_up_folder():
    """The set-ups build into tests/tmp/<Dataset>/setup/: a row that wrote
    there could start from its own earlier output."""
    for param in ROWS:
        out = output_folder(param.values[0]["test_debug_flags"])
        assert "/setup/" not in f"{out}/", f"{param.id}: --output_folder={out}"
        for flag in ("--output_root", "--csv_folder"):
            for value in re.findall(
                rf"{flag}=(\S+)", param.values[0]["test_debug_flags"]
            ):
                assert "/setup/" not in f"{value}/", f"{param.id}: {flag}={value}"


def test_a_set_up_input_is_built_once_and_rebuilt_when_unfinished(tmp_path):
    quiet = {"echo": lambda _: None}
    name = "tests/tmp/LibriSpeech/setup/data"
    tree = build(name, tmp_path, **quiet)
    flac = next(tree.rglob("*.flac"))
    first = flac.stat().st_mtime_ns
    assert build(name, tmp_path, **quiet) == tree
    assert flac.stat().st_mtime_ns == first, "a finished input was built again"
    (tree / COMPLETE).unlink()  # a build that was stopped: no marker
    (tree / "half-written").touch()
    build(name, tmp_path, **quiet)
    assert not (tree / "half-written").exists() and (tree / COMPLETE).is_file()
    with pytest.raises(KeyError, match="unknown set-up input"):
        build("tests/tmp/LibriSpeech/setup/nothing", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS)
def test_recipe_runs_on_tiny_data(row, workdir):
    run = run_row(row, workdir)
    assert run.ok, run.report()


def _top_level_keys(text: str) -> list[str]:
    """Keys at column 0 of a YAML file, without ``!apply`` side-effect lines."""
    keys = []
    for line in text.splitlines():
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", line)
        if match and "!apply" not in line:
            keys.append(match.group(1))
    return keys


def _run_option_names() -> set[str]:
    """The run options a Brain takes from hparams (SpeechBrain 1.1 lists them
    in ``RunOptions``, 1.0 in ``speechbrain.core.run_opt_defaults``).

    Example
    -------
    >>> {"device", "max_grad_norm"} <= _run_option_names()
    True
    """
    try:
        from speechbrain.utils.run_opts import RunOptions
    except ModuleNotFoundError:  # SpeechBrain 1.0
        from speechbrain.core import run_opt_defaults

        return set(run_opt_defaults)
    return set(RunOptions().as_dict())


def _unused_keys(yaml_text: str, script_text: str) -> list[str]:
    """Top-level keys that neither the script reads nor the file references.

    Example
    -------
    >>> _unused_keys("a: 1\\nb: !ref <a>\\nc: 2\\n", 'x = hparams["b"]')
    ['c']
    """
    run_options = _run_option_names()
    unused = []
    for key in _top_level_keys(yaml_text):
        patterns = (f'hparams["{key}"]', f'hparams.get("{key}"', f"hparams.{key}")
        if any(p in script_text for p in patterns) or key in run_options:
            continue
        if re.search(rf"<{key}[>\[]", yaml_text):
            continue
        unused.append(key)
    return unused


def _script_and_stages(script: Path) -> str:
    """The text of a recipe script and of the ``speechbrain_probe`` modules it
    imports (``from speechbrain_probe.x import name`` or ``from
    speechbrain_probe.x import module``): the library stages that read its
    hparams."""
    text = script.read_text(encoding="utf-8")
    modules = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "speechbrain_probe."
        ):
            modules.append(node.module)
            modules += [f"{node.module}.{alias.name}" for alias in node.names]
    paths = [_source(m.replace(".", "/") + ".py") for m in modules]
    texts = [p.read_text(encoding="utf-8") for p in paths if p.is_file()]
    return "\n".join([text, *texts])


@pytest.mark.parametrize("row", ROWS)
def test_every_hparams_key_is_used_by_its_script(row):
    yaml_text = (REPO / row["Hparam_file"]).read_text(encoding="utf-8")
    script_text = _script_and_stages(REPO / row["Script_file"])
    assert _unused_keys(yaml_text, script_text) == []
    includes = re.findall(r"!include:(\S+)", yaml_text)
    folder = (REPO / row["Hparam_file"]).parent.resolve()
    recipe = (REPO / row["Script_file"]).parent.resolve()
    for include in includes:
        target = (folder / include).resolve()
        assert recipe in target.parents, f"!include:{include} leaves the recipe folder"


def test_the_key_check_sees_an_unused_key():
    yaml_text = (
        "lr: 0.1\nforgotten: 3\nopt: !name:torch.optim.Adam\n    lr: !ref <lr>\n"
    )
    assert _unused_keys(yaml_text, 'opt = hparams["opt"]') == ["forgotten"]


@pytest.mark.parametrize("row", ROWS)
def test_a_mistyped_override_is_refused(row, tmp_path):
    script = load_recipe(REPO / row["Script_file"])
    args = [
        str(REPO / row["Hparam_file"]),
        f"--output_folder={tmp_path / 'out'}",
        "--nubmer_of_epochs=1",
    ]
    if row["Dataset"] == "LibriSpeech":
        args += ["--librispeech_folder=unused", "--musan_folder=unused"]
    with pytest.raises((KeyError, ValueError), match="nubmer_of_epochs"):
        script.main(args)
    assert not (tmp_path / "out").exists(), "nothing is written before the check"
