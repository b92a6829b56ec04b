"""The recipe rows of ``tests/recipes/<Dataset>.csv``: reading them, the tiny
inputs each row's set-up builds, and running one row as SpeechBrain does.

A row is run like SpeechBrain's ``tests/utils/recipe_tests.py`` runs it, from
a working folder (the repository root for SpeechBrain's runner, a pytest
temporary folder for ``tests/test_recipes.py``):

1. the row's set-up script, ``tests/recipes/setup/<Script_file without .py,
   / -> _>/<Hparam_file relative to the script's folder, without .yaml,
   / -> _>``, if it exists;
2. ``python <Script_file> <Hparam_file> <test_debug_flags>``;
3. the files of ``file_exists=[...]`` must be in the row's ``--output_folder``.

Every path in the CSVs is relative to the working folder, under
``tests/tmp/<Dataset>/``. What a row needs before it runs (an exported ASR,
an ECAPA model, probes, a LibriSpeech + MUSAN tree, a user's corpus and
models) is built by its set-up script, with this module run as a program (the
repository root on PYTHONPATH, as the set-up scripts put it)::

    python -m tests.recipe_rows tests/tmp/Synthetic/setup/asr/vgg_lstm_baseline

which builds that folder (and what it needs) under the current folder: by
running the recipe that makes it, in ``--debug`` mode, or by a builder below
for data. The set-up folders ``tests/tmp/<Dataset>/setup/`` are never a
row's output: a row never starts from what it wrote itself. A finished folder
gets a marker and is reused by every later set-up (one build per working
folder); a folder without the marker (a build that was stopped or failed) is
removed and built again.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ROWS_FOLDER = REPO / "tests" / "recipes"
SETUP_FOLDER = ROWS_FOLDER / "setup"
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
COMPLETE = ".setup_complete"
#: appended to every recipe command, as SpeechBrain's runner appends its
#: ``run_opts`` (the same default): SpeechBrain 1.0's own default device is
#: ``cuda:0``, which a CPU-only machine does not have
RUN_OPTS = ["--device=cpu"]

# --- the rows ------------------------------------------------------------------


def read_rows() -> list[tuple[str, dict]]:
    """``(id, row)`` of every row of ``tests/recipes/*.csv``, in file order;
    the id is ``<Dataset file>:<line>:<hparams file name>``."""
    rows = []
    for table in sorted(ROWS_FOLDER.glob("*.csv")):
        with open(table, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != COLUMNS:
                raise ValueError(f"{table.name}: header {reader.fieldnames}")
            for number, row in enumerate(reader, start=2):
                rows.append(
                    (f"{table.stem}:{number}:{Path(row['Hparam_file']).name}", row)
                )
    return rows


def setup_script(row: dict) -> Path:
    """The set-up script SpeechBrain's runner looks for (it runs it if present).

    Example
    -------
    >>> setup_script({"Script_file": "recipes/A/B/C/train.py",
    ...               "Hparam_file": "recipes/A/B/C/hparams/x.yaml"}).relative_to(REPO)
    PosixPath('tests/recipes/setup/recipes_A_B_C_train/hparams_x')
    """
    script, hparams = row["Script_file"], row["Hparam_file"]
    name = hparams.replace(os.path.dirname(script), "")[1:-5].replace("/", "_")
    return SETUP_FOLDER / script[:-3].replace("/", "_") / name


def output_folder(flags: str) -> str:
    """The ``--output_folder`` of a row's flags (the checks look there).

    Example
    -------
    >>> output_folder("--debug --output_folder=tests/tmp/X/out --n=1")
    'tests/tmp/X/out'
    """
    match = re.search(r"--output_folder=(\S+)", flags)
    if not match:
        raise ValueError(
            "test_debug_flags must set --output_folder (the checks look there)"
        )
    return match.group(1)


def expected_files(checks: str) -> list[str]:
    """The files of ``file_exists=[...]``.

    Example
    -------
    >>> expected_files("file_exists=[a.txt, b/c.csv]")
    ['a.txt', 'b/c.csv']
    """
    match = re.search(r"file_exists=\[(.*?)\]", checks)
    return [f.strip() for f in match.group(1).split(",") if f.strip()] if match else []


@dataclass
class RowRun:
    """What running a row gave: ``ok``, or ``report()`` says what failed."""

    command: list[str]
    output_folder: Path
    returncode: int = 0
    stderr: str = ""
    failure: str = ""
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failure and self.returncode == 0 and not self.missing

    def report(self) -> str:
        if self.failure:
            return f"{self.failure}\n{self.stderr[-4000:]}"
        if self.returncode:
            return f"{shlex.join(self.command)}\nexit {self.returncode}\n{self.stderr[-4000:]}"
        return f"{self.output_folder} lacks {self.missing}"


_RUNS: dict[tuple, RowRun] = {}
_WORKDIRS: dict[str, Path] = {}


def session_workdir(tmp_path_factory) -> Path:
    """The one working folder of this pytest session (every test file that
    runs rows shares it, and with it the set-up inputs and the rows' runs)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _WORKDIRS:
        _WORKDIRS[key] = tmp_path_factory.mktemp("recipe_rows")
    return _WORKDIRS[key]


def run_row(row: dict, workdir: Path) -> RowRun:
    """Run one row from ``workdir`` (set-up, recipe, file checks), once per
    working folder: a second call gives the first call's result."""
    key = (
        str(workdir),
        row["Script_file"],
        row["Hparam_file"],
        row["test_debug_flags"],
    )
    if key not in _RUNS:
        _RUNS[key] = _run_row(row, Path(workdir))
    return _RUNS[key]


def _run_row(row: dict, workdir: Path) -> RowRun:
    flags = row["test_debug_flags"]
    out = workdir / output_folder(flags)
    setup = setup_script(row)
    if setup.exists():
        command = [str(setup)]
        done = subprocess.run(
            command,
            cwd=workdir,
            env={**os.environ, "PYTHON": sys.executable},
            capture_output=True,
            text=True,
        )
        if done.returncode:
            return RowRun(
                command,
                out,
                done.returncode,
                done.stderr,
                failure=f"set-up {setup.relative_to(REPO)} exited {done.returncode}",
            )
    if not out.is_dir():
        # SpeechBrain's runner writes stdout.txt there before the recipe runs
        return RowRun(
            [str(setup)],
            out,
            failure=f"the set-up {setup.relative_to(REPO)} did not create {out}",
        )
    command = [
        sys.executable,
        str(REPO / row["Script_file"]),
        str(REPO / row["Hparam_file"]),
        *shlex.split(flags),
        *RUN_OPTS,
    ]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    missing = [
        f for f in expected_files(row["test_debug_checks"]) if not (out / f).exists()
    ]
    return RowRun(command, out, done.returncode, done.stderr, missing=missing)


# --- the inputs that the set-ups build -------------------------------------------

SYNTHETIC = "tests/tmp/Synthetic/setup"
SYNTHETIC_CORPUS = "tests/tmp/Synthetic/corpus"  # built by whichever recipe runs first
LIBRISPEECH = "tests/tmp/LibriSpeech/setup"
ANY_CORPUS = "tests/tmp/AnyCorpus/setup"
LIBRISPEECH_DATA = (
    f"--librispeech_folder={LIBRISPEECH}/data/LibriSpeech "
    f"--musan_folder={LIBRISPEECH}/data/musan --num_babble=2"
)
#: the LibriSpeech study's models (arch, training): an ASR and its probes each
LIBRISPEECH_MODELS = (("vgg_lstm", "baseline"), ("blstm", "robust"))


@dataclass(frozen=True)
class Input:
    """A folder a row needs, made by ``recipe`` (script, hparams and flags,
    ``{folder}`` standing for the folder) or by ``builder(folder)``, after the
    folders in ``needs``; ``expect`` is a file the folder must then hold."""

    needs: tuple[str, ...] = ()
    recipe: tuple[str, str, str] | None = None
    builder: str | None = None
    expect: str = ""


INPUTS: dict[str, Input] = {
    # --- Synthetic: the ASR models, the ECAPA verifier, probes ------------------
    f"{SYNTHETIC}/asr/vgg_lstm_baseline": Input(
        recipe=(
            "recipes/Synthetic/ASR/CTC/train_asr.py",
            "hparams/vgg_lstm.yaml",
            f"--data_folder={SYNTHETIC_CORPUS} --corpus_preset=tiny "
            f"--output_root={SYNTHETIC}/asr --output_folder={{folder}} "
            "--vocab_size=30 --debug --debug_persistently",
        ),
        expect="export/hyperparams.yaml",
    ),
    f"{SYNTHETIC}/asr/blstm_robust": Input(
        recipe=(
            "recipes/Synthetic/ASR/CTC/train_asr.py",
            "hparams/blstm.yaml",
            f"--data_folder={SYNTHETIC_CORPUS} --corpus_preset=tiny --training=robust "
            f"--output_root={SYNTHETIC}/asr --output_folder={{folder}} "
            "--vocab_size=40 --inter_ctc_vocab_size=30 --debug --debug_persistently",
        ),
        expect="export/hyperparams.yaml",
    ),
    f"{SYNTHETIC}/ecapa": Input(
        recipe=(
            "recipes/Synthetic/SpeakerRec/ECAPA/train_ecapa.py",
            "hparams/ecapa.yaml",
            f"--data_folder={SYNTHETIC_CORPUS} --corpus_preset=tiny "
            "--output_folder={folder} --batch_size=4 --n_bootstrap=20 "
            "--debug --debug_persistently",
        ),
        expect="model/embedding_model.ckpt",
    ),
    # the probes the study reads (<probe_folder>/<model>/all_layers/save); one
    # layer keeps the study's debug run short
    f"{SYNTHETIC}/probe/vgg_lstm_baseline/all_layers": Input(
        needs=(f"{SYNTHETIC}/asr/vgg_lstm_baseline",),
        recipe=(
            "recipes/Synthetic/Probe/Highway/train_probe.py",
            "hparams/all_layers.yaml",
            f"--data_folder={SYNTHETIC_CORPUS} --corpus_preset=tiny "
            f"--asr_folder={SYNTHETIC}/asr --output_folder={{folder}} "
            "--layers=[blstm3] --train_utts=8 --valid_utts=4 "
            "--debug --debug_persistently",
        ),
        expect="valid_l1.csv",
    ),
    # --- LibriSpeech: a tree in the real layouts, manifests, ASR, probes --------
    f"{LIBRISPEECH}/data": Input(builder="librispeech_tree", expect="musan"),
    # the probes' manifests (train-clean-100, dev-clean, MUSAN) and the study's
    # test conditions (test-clean and its noisy copies), as the recipes write them
    f"{LIBRISPEECH}/csv": Input(
        needs=(f"{LIBRISPEECH}/data",),
        builder="librispeech_manifests",
        expect="test-clean.csv",
    ),
    **{
        f"{LIBRISPEECH}/asr/{arch}_{training}": Input(
            needs=(f"{LIBRISPEECH}/data",),
            recipe=(
                "recipes/LibriSpeech/ASR/CTC/train_asr.py",
                f"hparams/{arch}.yaml",
                f"{LIBRISPEECH_DATA} --training={training} "
                f"--output_root={LIBRISPEECH}/asr --output_folder={{folder}} "
                "--vocab_size=20 --batch_size=4 --debug --debug_persistently",
            ),
            expect="export/hyperparams.yaml",
        )
        for arch, training in LIBRISPEECH_MODELS
    },
    # every paper layer: tests/test_recipes_librispeech.py checks the study
    **{
        f"{LIBRISPEECH}/probe/{arch}_{training}/all_layers": Input(
            needs=(f"{LIBRISPEECH}/csv", f"{LIBRISPEECH}/asr/{arch}_{training}"),
            recipe=(
                "recipes/LibriSpeech/Probe/Highway/train_probe.py",
                "hparams/all_layers.yaml",
                f"{LIBRISPEECH_DATA} --arch={arch} --training={training} "
                f"--asr_folder={LIBRISPEECH}/asr --csv_folder={LIBRISPEECH}/csv "
                "--output_folder={folder} --num_workers=0 --num_threads=1 "
                "--debug --debug_epochs=1 --debug_persistently",
            ),
            expect="valid_l1.csv",
        )
        for arch, training in LIBRISPEECH_MODELS
    },
    # --- AnyCorpus: what a user brings ---------------------------------------
    f"{ANY_CORPUS}/inputs": Input(builder="user_inputs", expect="models/wav2vec2"),
}


def build(name: str, workdir: Path | str = ".", echo=print) -> Path:
    """Make the input folder ``name`` (a key of :data:`INPUTS`) under
    ``workdir``, after what it needs; a folder with its marker is kept.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> tree = build("tests/tmp/LibriSpeech/setup/data", tmp, echo=lambda _: None)
    >>> sorted(p.name for p in tree.iterdir())
    ['.setup_complete', 'LibriSpeech', 'musan']
    """
    if name not in INPUTS:
        raise KeyError(f"unknown set-up input {name!r}; known: {', '.join(INPUTS)}")
    spec = INPUTS[name]
    workdir = Path(workdir)
    for need in spec.needs:
        build(need, workdir, echo)
    folder = workdir / name
    if (folder / COMPLETE).is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    echo(f"set-up: building {name}")
    if spec.recipe:
        script, hparams, flags = spec.recipe
        command = [
            sys.executable,
            str(REPO / script),
            str(REPO / Path(script).parent / hparams),
            *shlex.split(flags.format(folder=name)),
            *RUN_OPTS,
        ]
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(
                f"set-up of {name} failed: {shlex.join(command)} (in {workdir}) "
                f"exited {done.returncode}\n{done.stderr[-4000:]}"
            )
    else:
        BUILDERS[spec.builder](folder, workdir)
    if spec.expect and not (folder / spec.expect).exists():
        raise RuntimeError(f"set-up of {name} finished without {spec.expect}")
    (folder / COMPLETE).write_text("")
    return folder


# --- builders of data ------------------------------------------------------------

WORDS = ["HELLO", "WORLD", "A", "CAT", "SAT", "ON", "THE", "MAT", "I'M", "HERE"]


def _tone(rng, seconds=0.5, sr=16000):
    t = np.arange(int(seconds * sr)) / sr
    return 0.2 * np.sin(
        2 * np.pi * rng.uniform(100, 400) * t
    ) + 0.02 * rng.standard_normal(len(t))


def fake_librispeech(
    root, split, speakers=(19, 84), chapters=2, utts=3, seed=0, seconds=0.5
):
    """``<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt`` + ``.flac`` files
    of ``seconds`` each (tones, random words)."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for spk in speakers:
        for c in range(chapters):
            chap = 1000 + 10 * spk + c
            folder = root / split / str(spk) / str(chap)
            folder.mkdir(parents=True)
            lines = []
            for u in range(utts):
                utt_id = f"{spk}-{chap}-{u:04d}"
                sf.write(folder / f"{utt_id}.flac", _tone(rng, seconds), 16000)
                words = " ".join(rng.choice(WORDS, size=4))
                lines.append(f"{utt_id} {words}")
            (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def fake_musan(root, per_category=5, seed=0):
    """``musan/{music,noise,speech}/<source>/*.wav``."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    for cat, source in (
        ("music", "fma"),
        ("noise", "free-sound"),
        ("speech", "librivox"),
    ):
        folder = root / "musan" / cat / source
        folder.mkdir(parents=True)
        for i in range(per_category):
            sf.write(folder / f"{cat}-{source}-{i:04d}.wav", _tone(rng, 1.0), 16000)
    return root / "musan"


def librispeech_tree(folder: Path, workdir: Path) -> None:
    """A small LibriSpeech + MUSAN tree in the real layouts."""
    splits = {
        "train-clean-100": (19, 84, 103),
        "dev-clean": (251,),
        "test-clean": (61, 121),
    }
    for seed, (split, speakers) in enumerate(splits.items()):
        # 2-s files: long enough for the pure-BLSTM's 8x time reduction
        fake_librispeech(
            folder / "LibriSpeech", split, speakers, chapters=1, seed=seed, seconds=2.0
        )
    fake_musan(folder, per_category=8)


def librispeech_manifests(folder: Path, workdir: Path) -> None:
    """What train_probe.py and evaluate.py prepare, with the rows' values."""
    from speechbrain_probe.data.librispeech_study import (
        prepare_probe_data,
        prepare_test_conditions,
    )

    data = workdir / LIBRISPEECH / "data"
    for prepare in (prepare_probe_data, prepare_test_conditions):
        prepare(
            data / "LibriSpeech", data / "musan", folder, num_babble=2, progress=False
        )


def user_inputs(folder: Path, workdir: Path) -> None:
    """Speech at other rates and channel counts, noises, tiny random Hugging
    Face models (``tests/user_inputs.py``)."""
    from tests.user_inputs import write_user_inputs

    write_user_inputs(folder)


BUILDERS = {
    "librispeech_tree": librispeech_tree,
    "librispeech_manifests": librispeech_manifests,
    "user_inputs": user_inputs,
}


def main(argv: list[str]) -> int:
    """``recipe_rows.py FOLDER [FOLDER ...]``: build these set-up inputs under
    the current folder."""
    if not argv or argv[0] in ("-h", "--help"):
        print(main.__doc__.strip() + "\nknown: " + " ".join(INPUTS))
        return 0 if argv else 2
    from speechbrain_probe.data.locks import folder_lock

    # one builder at a time per working folder (rows run side by side wait)
    with folder_lock(Path("tests/tmp"), "the recipe rows' set-up inputs"):
        for name in argv:
            build(name.rstrip("/"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
