"""``python -m speechbrain_probe.demo [--quick]``: the whole study on the built-in corpus.

Stages, each resumable and skipped once its output exists:

1. build the built-in corpus (eSpeak speakers, noise bank, noisy test sets);
2. train the CTC ASR models (VGG-LSTM and pure-LSTM, baseline and robust);
3. train the ECAPA speaker verifier on the training speakers;
4. train the probes of every paper layer of every ASR (one pass per model);
5. evaluate (reconstruct, GE2E/ECAPA EER, STOI, PESQ at clean/20/10/0 dB)
   and write the report.

Each training stage runs its SpeechBrain recipe as a separate process, with
the same command line a user would type (printed before it runs), so a stage
that is killed resumes from its last checkpoint on the next ``make demo``.
``--quick`` runs a small corpus and one architecture (a few minutes).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .data.synthetic import build_corpus

__all__ = ["main", "format_sizes", "Stage", "plan_stages", "DemoSettings"]

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes" / "Synthetic"


def format_sizes(sizes: dict) -> str:
    """A small table of speakers, utterances and minutes per split.

    Example
    -------
    >>> print(format_sizes({"train": {"speakers": 2, "utterances": 4, "minutes": 0.3}}))
    split          speakers  utterances  minutes
    train                 2           4      0.3
    """
    lines = [f"{'split':<12} {'speakers':>10} {'utterances':>11} {'minutes':>8}"]
    for split, size in sizes.items():
        if split == "noise":
            continue
        lines.append(
            f"{split:<12} {size['speakers']:>10} {size['utterances']:>11} "
            f"{size['minutes']:>8}"
        )
    return "\n".join(lines)


def _threads() -> str:
    """The ASR recipes default to one thread (safe on a shared machine); the demo
    runs one stage at a time, so it gives them every core (measured 1.7x faster
    per epoch on 2 free cores). ``SBPROBE_THREADS`` overrides it: on a machine
    that is busy with other work, torch's threads wait on each other and one
    thread is several times faster than two."""
    threads = os.environ.get("SBPROBE_THREADS") or os.cpu_count() or 1
    return f"--num_threads={int(threads)}"


@dataclass
class DemoSettings:
    """What the demo runs: the default study or the quick one.

    Example
    -------
    >>> s = DemoSettings.make(quick=True, data_dir="data", results_dir="results")
    >>> s.models, s.corpus.name
    (['vgg_lstm_baseline', 'vgg_lstm_robust'], 'synthetic_quick')
    """

    corpus: Path
    results: Path
    preset: str
    models: list[str]
    asr_overrides: list[str] = field(default_factory=list)
    #: epochs per model when not the recipe's default (robust models see every
    #: utterance twice per epoch, so half the baseline's epochs = same updates)
    asr_epochs: dict[str, int] = field(default_factory=dict)
    ecapa_overrides: list[str] = field(default_factory=list)
    probe_overrides: list[str] = field(default_factory=list)
    eval_overrides: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, quick: bool, data_dir, results_dir) -> DemoSettings:
        """The default study, or (``quick``) a small one of one architecture."""
        if quick:
            return cls(
                corpus=Path(data_dir) / "synthetic_quick",
                results=Path(results_dir) / "demo_quick",
                preset="quick",
                models=["vgg_lstm_baseline", "vgg_lstm_robust"],
                asr_overrides=[_threads()],
                asr_epochs={"vgg_lstm_baseline": 6, "vgg_lstm_robust": 3},
                ecapa_overrides=["--number_of_epochs=1"],
                probe_overrides=[
                    "--number_of_epochs=2",
                    "--train_utts=64",
                    "--valid_utts=16",
                ],
                # clean and 0 dB only: the evaluation is ~0.4 CPU-s per
                # reconstruction (Griffin-Lim + PESQ), the quick budget 5 min
                eval_overrides=[
                    "--utts_per_speaker=2",
                    "--n_boot=200",
                    "--conditions=[clean,snr0]",
                ],
            )
        return cls(
            corpus=Path(data_dir) / "synthetic",
            results=Path(results_dir) / "demo",
            preset="default",
            models=[
                "vgg_lstm_baseline",
                "vgg_lstm_robust",
                "blstm_baseline",
                "blstm_robust",
            ],
            asr_overrides=[_threads()],
            # the 30-minute budget: a 2-epoch ECAPA, 3 test utterances per
            # speaker (48 positive + 48 negative trials per cell)
            ecapa_overrides=["--number_of_epochs=2"],
            eval_overrides=["--utts_per_speaker=3"],
        )


@dataclass
class Stage:
    """One step of the demo: a command, and the file that says it is done."""

    name: str
    command: list[str]
    done_marker: Path

    def done(self) -> bool:
        """Whether the stage's final output exists."""
        return self.done_marker.exists()


def _asr_yaml(model: str) -> str:
    arch, training = model.rsplit("_", 1)
    return f"{arch}_robust.yaml" if training == "robust" else f"{arch}.yaml"


def plan_stages(s: DemoSettings, python: str = sys.executable) -> list[Stage]:
    """The recipe commands of the study, in order (corpus excluded).

    Example
    -------
    >>> s = DemoSettings.make(quick=True, data_dir="data", results_dir="results")
    >>> [st.name for st in plan_stages(s)]  # doctest: +NORMALIZE_WHITESPACE
    ['ASR vgg_lstm_baseline', 'ASR vgg_lstm_robust', 'ECAPA verifier',
     'probes vgg_lstm_baseline', 'probes vgg_lstm_robust', 'evaluation + report']
    """

    def recipe(name, folder, script, yaml, args, done_marker) -> Stage:
        """``python recipes/Synthetic/<folder>/<script> <hparams yaml> --data_folder=... args``"""
        command = [
            python,
            str(RECIPES / folder / script),
            str(RECIPES / folder / "hparams" / yaml),
            f"--data_folder={s.corpus}",
            *args,
        ]
        return Stage(name, command, done_marker)

    stages = []
    for model in s.models:
        epochs = s.asr_epochs.get(model)
        stages.append(
            recipe(
                f"ASR {model}",
                "ASR",
                "train_asr.py",
                _asr_yaml(model),
                [
                    f"--output_root={s.results / 'asr'}",
                    *s.asr_overrides,
                    *([f"--number_of_epochs={epochs}"] if epochs else []),
                ],
                s.results / "asr" / model / "export" / "hyperparams.yaml",
            )
        )
    ecapa = s.results / "ecapa"
    stages.append(
        recipe(
            "ECAPA verifier",
            "ECAPA",
            "train_ecapa.py",
            "train_ecapa.yaml",
            [f"--output_folder={ecapa}", *s.ecapa_overrides],
            ecapa / "model" / "hyperparams.yaml",
        )
    )
    for model in s.models:
        arch, training = model.rsplit("_", 1)
        out = s.results / "probe" / model / "all_layers"
        stages.append(
            recipe(
                f"probes {model}",
                "probe",
                "train_probe.py",
                "all_layers.yaml",
                [
                    f"--arch={arch}",
                    f"--training={training}",
                    f"--asr_folder={s.results / 'asr'}",
                    f"--output_folder={out}",
                    *s.probe_overrides,
                ],
                out / "valid_l1.csv",
            )
        )
    study = s.results / "study"
    stages.append(
        recipe(
            "evaluation + report",
            "evaluate",
            "evaluate.py",
            "evaluate.yaml",
            [
                f"--results_folder={s.results}",
                f"--output_folder={study}",
                f"--ecapa_source={ecapa / 'model'}",
                f"--use_models=[{','.join(s.models)}]",
                *s.eval_overrides,
            ],
            study / "report.html",
        )
    )
    return stages


def _run(stage: Stage, index: int, total: int) -> float:
    print(
        f"\n[{index}/{total}] {stage.name}\n$ {shlex.join(stage.command)}", flush=True
    )
    started = time.time()
    proc = subprocess.run(stage.command, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(
            f"stage '{stage.name}' failed (exit {proc.returncode}); its output is above. "
            "Fix the cause and run `make demo` again: finished stages are kept and "
            "this one resumes from its last checkpoint."
        )
    if not stage.done():
        raise SystemExit(
            f"stage '{stage.name}' ended without writing {stage.done_marker}"
        )
    return time.time() - started


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the study; print where the report is."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small corpus, one architecture"
    )
    parser.add_argument("--data-dir", default="data", help="folder of the corpora")
    parser.add_argument("--results-dir", default="results", help="folder of results")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument(
        "--corpus-only", action="store_true", help="build the corpus and stop"
    )
    args = parser.parse_args(argv)

    settings = DemoSettings.make(args.quick, args.data_dir, args.results_dir)
    stages = [] if args.corpus_only else plan_stages(settings)
    total = 1 + len(stages)
    started = time.time()
    print(
        f"[1/{total}] built-in corpus ({settings.preset}) in {settings.corpus.resolve()}"
    )
    info = build_corpus(settings.corpus, seed=args.seed, preset=settings.preset)
    print(format_sizes(info["sizes"]))
    noise = info["sizes"].get("noise", {})
    for split, counts in noise.items():
        text = ", ".join(f"{n} {cat}" for cat, n in counts.items())
        print(f"noise bank {split}: {text}")
    print(
        f"vocabulary of the training transcripts: {info['vocabulary']} words; "
        f"built in {info['build_seconds']} s (seed {info['seed']})"
    )
    timings = {}
    for i, stage in enumerate(stages, start=2):
        if stage.done():
            print(f"[{i}/{total}] {stage.name}: done already ({stage.done_marker})")
            continue
        timings[stage.name] = _run(stage, i, total)
    for name, seconds in timings.items():
        print(f"  {name}: {seconds / 60:.1f} min")
    if stages:
        report = stages[-1].done_marker.resolve()
        print(f"\nReport: {report}\n(open it in a browser: file://{report})")
    print(f"demo finished in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
