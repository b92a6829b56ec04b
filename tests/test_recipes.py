"""Every row of ``tests/recipes/<Dataset>.csv`` runs end to end on tiny data.

The CSV files have SpeechBrain's recipe-test format (Task, Dataset,
Script_file, Hparam_file, Data_prep_file, Readme_file, Result_url, HF_repo,
test_debug_flags, test_debug_checks). Each row is run from the repository
root as ``python <Script_file> <Hparam_file> <test_debug_flags>``, in the
order of its file (a probe row uses the ASR an earlier row exported), and the
files named by ``file_exists=[...]`` in ``test_debug_checks`` must exist in
the row's ``--output_folder``. The Synthetic rows build the ``tiny`` corpus
themselves (their data preparation is part of the run); the LibriSpeech rows
get a small LibriSpeech + MUSAN tree in the real layout, built here.

Also checked for every row: every top-level key of the hparams file is used
by its script (or referenced inside the file), and a mistyped override is
refused.
"""

from __future__ import annotations

import csv
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from recipe_scripts import REPO, load_recipe  # noqa: E402

TMP = REPO / "tests" / "tmp"
COLUMNS = [
    "Task",
    "Dataset",
    "Script_file",
    "Hparam_file",
    "Data_prep_file",
    "Readme_file",
    "Result_url",
    "HF_repo",
    "test_debug_flags",
    "test_debug_checks",
]


def _rows():
    rows = []
    for table in sorted((REPO / "tests" / "recipes").glob("*.csv")):
        with open(table, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == COLUMNS, (
                f"{table.name}: header {reader.fieldnames}"
            )
            for number, row in enumerate(reader, start=2):
                rows.append(
                    pytest.param(
                        row, id=f"{table.stem}:{number}:{Path(row['Hparam_file']).name}"
                    )
                )
    return rows


ROWS = _rows()


def _output_folder(flags: str) -> Path:
    match = re.search(r"--output_folder=(\S+)", flags)
    assert match, "test_debug_flags must set --output_folder (the checks look there)"
    return REPO / match.group(1)


def _expected_files(checks: str) -> list[str]:
    match = re.search(r"file_exists=\[(.*?)\]", checks)
    return [f.strip() for f in match.group(1).split(",") if f.strip()] if match else []


@pytest.fixture(scope="session")
def fresh_tmp():
    """``tests/tmp`` emptied once per session: rows reuse what earlier rows of
    the same session made, never what an old run left."""
    shutil.rmtree(TMP, ignore_errors=True)
    TMP.mkdir(parents=True)
    return TMP


@pytest.fixture(scope="session")
def librispeech_tree(fresh_tmp):
    """A small LibriSpeech + MUSAN tree in the real layouts (tones, random words)."""
    from test_data_prepare import fake_librispeech, fake_musan

    root = fresh_tmp / "LibriSpeech" / "data"
    for seed, (split, speakers) in enumerate(
        {
            "train-clean-100": (19, 84, 103),
            "dev-clean": (251,),
            "test-clean": (61, 121),
        }.items()
    ):
        # 2-s files: long enough for the pure-BLSTM's 8x time reduction
        fake_librispeech(
            root / "LibriSpeech", split, speakers, chapters=1, seed=seed, seconds=2.0
        )
    fake_musan(root, per_category=8)
    return root


@pytest.fixture(scope="session")
def user_inputs(fresh_tmp):
    """What a user brings to the one-command recipe: speech at other rates and
    channel counts, noises, tiny random Hugging Face models."""
    from user_inputs import write_user_inputs

    return write_user_inputs(fresh_tmp / "AnyCorpus" / "inputs")


def test_every_csv_row_names_existing_files():
    assert ROWS, "no recipe rows found in tests/recipes/*.csv"
    for param in ROWS:
        row = param.values[0]
        for column in ("Script_file", "Hparam_file", "Data_prep_file", "Readme_file"):
            assert (REPO / row[column]).is_file(), f"{param.id}: {column} {row[column]}"
        assert "--debug" in row["test_debug_flags"], f"{param.id}: no --debug"
    hparams = sorted(
        str(p.relative_to(REPO)) for p in REPO.glob("recipes/**/hparams/*.yaml")
    )
    listed = sorted({p.values[0]["Hparam_file"] for p in ROWS})
    assert hparams == listed, "every hparams file needs a row in tests/recipes/*.csv"


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS)
def test_recipe_runs_on_tiny_data(row, fresh_tmp, request):
    if row["Dataset"] == "LibriSpeech":
        request.getfixturevalue("librispeech_tree")
    if row["Dataset"] == "AnyCorpus":
        request.getfixturevalue("user_inputs")
    flags = shlex.split(row["test_debug_flags"])
    command = [sys.executable, row["Script_file"], row["Hparam_file"], *flags]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, (
        f"{shlex.join(command)}\nexit {done.returncode}\n{done.stderr[-4000:]}"
    )
    out = _output_folder(row["test_debug_flags"])
    missing = [
        f for f in _expected_files(row["test_debug_checks"]) if not (out / f).exists()
    ]
    assert not missing, f"{out} lacks {missing}"


def _top_level_keys(text: str) -> list[str]:
    """Keys at column 0 of a YAML file, without ``!apply`` side-effect lines."""
    keys = []
    for line in text.splitlines():
        match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:", line)
        if match and "!apply" not in line:
            keys.append(match.group(1))
    return keys


def _unused_keys(yaml_text: str, script_text: str) -> list[str]:
    """Top-level keys that neither the script reads nor the file references.

    Example
    -------
    >>> _unused_keys("a: 1\\nb: !ref <a>\\nc: 2\\n", 'x = hparams["b"]')
    ['c']
    """
    from speechbrain.utils.run_opts import RunOptions

    run_options = set(RunOptions().as_dict())
    unused = []
    for key in _top_level_keys(yaml_text):
        patterns = (f'hparams["{key}"]', f'hparams.get("{key}"', f"hparams.{key}")
        if any(p in script_text for p in patterns) or key in run_options:
            continue
        if re.search(rf"<{key}[>\[]", yaml_text):
            continue
        unused.append(key)
    return unused


@pytest.mark.parametrize("row", ROWS)
def test_every_hparams_key_is_used_by_its_script(row):
    yaml_text = (REPO / row["Hparam_file"]).read_text(encoding="utf-8")
    script_text = (REPO / row["Script_file"]).read_text(encoding="utf-8")
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
