"""``python -m speechbrain_probe.demo [--quick | --full]``: the whole study on the built-in corpus.

Stages, each resumable and skipped once its output exists:

1. build the built-in corpus (eSpeak speakers, noise bank, noisy test sets);
2. train the CTC ASR models (VGG-LSTM and pure-LSTM, baseline and robust);
3. train the ECAPA speaker verifier on the training speakers;
4. train the probes of every paper layer of every ASR (one pass per model);
5. evaluate (reconstruct, GE2E/ECAPA EER, STOI, PESQ at clean/20/10/5/0 dB)
   and write the report.

Each training stage runs its SpeechBrain recipe as a separate process, with
the same command line a user would type (printed before it runs), so a stage
that is killed resumes from its last checkpoint on the next ``make demo``.
``--quick`` runs a small corpus and one architecture (a few minutes);
``--full`` (``make study``) evaluates the default demo's models at full power
(every test utterance, five conditions, paired robust-vs-baseline intervals),
reusing whatever stages of the default demo have finished.
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import os
import sys
import time
from dataclasses import astuple, dataclass, field
from pathlib import Path

from speechbrain_probe.vocabulary import ModelId

from .atomic import atomic_write_text
from .data.locks import FolderBusy, folder_lock
from .data.synthetic import build_corpus, preset_settings
from .environment import check_environment
from .extras import require_extra
from .pipeline import Stage, StageFailed, run_stages

__all__ = [
    "main",
    "format_sizes",
    "plan_stages",
    "DemoSettings",
    "stage_env",
    "shipped_mimalloc",
]

#: The recipes, relative to the folder the demo runs in (``make demo`` runs
#: it from the repository root; ``--recipes-dir`` points elsewhere).
RECIPES_DIR = Path("recipes")


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


#: Resident memory of the largest demo stage (the robust VGG-LSTM training
#: under mimalloc, 1.66 GB measured), with room to spare: a lane per this much
#: available memory.
STAGE_MEMORY_BYTES = int(1.8 * 2**30)


def default_lanes(cores: int | None = None, available_bytes: int | None = None) -> int:
    """Stages run side by side: one per core up to the demo's four models,
    and no more than the available memory holds.

    Two one-thread ASR trainings side by side did 1.2x the work of one
    two-thread training in the same time (measured on 2 cores: a VGG-LSTM
    step 0.35 s at one thread with a second training running, 0.205 s at
    two threads alone): a small LSTM's sequential time steps leave extra
    threads idle, so a machine with more cores runs more stages at once
    (the demo has four ASRs, then four probe trainings) before it gives a
    stage more threads (:func:`stage_threads`).

    Example
    -------
    >>> default_lanes(2, 24 * 2**30), default_lanes(16, 64 * 2**30), default_lanes(16, 4 * 2**30)
    (2, 4, 2)
    >>> default_lanes(1, 24 * 2**30)
    1
    """
    cores = cores or os.cpu_count() or 1
    if available_bytes is None:
        available_bytes = _available_memory()
    by_memory = max(1, available_bytes // STAGE_MEMORY_BYTES)
    return int(max(1, min(4, cores, by_memory)))


def _available_memory() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (elsewhere: assume 8 GB)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def stage_threads(lanes: int) -> int:
    """Torch threads per stage: the cores shared among the lanes.
    ``SBPROBE_THREADS`` overrides it (on a machine busy with other work, one
    thread per stage is several times faster than two that wait on each other)."""
    forced = os.environ.get("SBPROBE_THREADS")
    if forced:
        return max(1, int(forced))
    return max(1, (os.cpu_count() or 1) // max(1, lanes))


#: Where Debian/Ubuntu, Fedora and Homebrew put jemalloc (used when the
#: project's own mimalloc is missing, e.g. a platform without its wheel).
JEMALLOC_PATHS = (
    "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    "/usr/lib64/libjemalloc.so.2",
    "/usr/lib/libjemalloc.so.2",
    "/usr/local/lib/libjemalloc.so.2",
)

#: jemalloc settings of the stages: freed pages kept 30 s for reuse, then
#: returned; transparent huge pages.
JEMALLOC_CONF = "thp:always,dirty_decay_ms:30000,muzzy_decay_ms:30000"

#: Without another allocator: glibc with a fixed 4 MB mmap threshold (large
#: tensors go back to the system when freed) and transparent huge pages.
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=4194304:glibc.malloc.hugetlb=1"


def shipped_mimalloc() -> str | None:
    """``libmimalloc.so`` of the ``cmeel-mimalloc`` wheel that the project
    installs (Linux), or None when it is not installed.

    Example
    -------
    >>> lib = shipped_mimalloc()
    >>> lib is None or lib.endswith("libmimalloc.so")
    True
    """
    try:
        files = metadata.distribution("cmeel-mimalloc").files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "libmimalloc.so" and file.parent.name == "lib":
            path = Path(file.locate())
            if path.is_file():
                return str(path)
    return None


def stage_env(threads: int, base: dict | None = None) -> tuple[dict, str | None]:
    """Environment of the stage processes, and the malloc library preloaded.

    Torch's default thread count follows ``OMP_NUM_THREADS``. glibc's malloc
    keeps the freed buffers of variable-length batches as fragmented heap, so
    the stages run with mimalloc from the ``cmeel-mimalloc`` wheel (a
    dependency of the project, so every install has it), else a system
    jemalloc, else glibc with :data:`GLIBC_TUNABLES` (unless
    ``GLIBC_TUNABLES`` is set already). One epoch of the robust VGG-LSTM on
    the quick corpus, one thread, 2-core AMD EPYC VM: glibc defaults 3.69 GB
    peak, 1.79 training min; glibc tunables 1.83 GB, 1.74 min; jemalloc
    1.65 GB, 1.66 min; mimalloc 1.66 GB, 1.65 min.

    ``SBPROBE_MALLOC`` chooses: ``glibc``, or the path of a library to preload.

    Example
    -------
    >>> env, lib = stage_env(1, base={"SBPROBE_MALLOC": "glibc"})
    >>> env["OMP_NUM_THREADS"], lib, "LD_PRELOAD" in env, env["GLIBC_TUNABLES"]
    ('1', None, False, 'glibc.malloc.mmap_threshold=4194304:glibc.malloc.hugetlb=1')
    """
    env = dict(os.environ if base is None else base)
    env["OMP_NUM_THREADS"] = str(threads)
    choice = env.get("SBPROBE_MALLOC", "")
    if choice == "glibc":
        library = None
    elif choice:
        if not Path(choice).is_file():
            raise ValueError(
                f"SBPROBE_MALLOC={choice}: no such library; name an existing "
                "malloc library (.so), 'glibc', or unset it for the default"
            )
        library = choice
    else:
        found = (p for p in JEMALLOC_PATHS if Path(p).is_file())
        library = shipped_mimalloc() or next(found, None)
    if library is None:
        env.setdefault("GLIBC_TUNABLES", GLIBC_TUNABLES)
        return env, None
    env["LD_PRELOAD"] = " ".join(x for x in (env.get("LD_PRELOAD"), library) if x)
    if "jemalloc" in Path(library).name:
        env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    return env, library


@dataclass
class DemoSettings:
    """What the demo runs: the default study or the quick one.

    Example
    -------
    >>> s = DemoSettings.make(quick=True, data_dir="data", results_dir="results")
    >>> s.models, s.corpus.name, s.lanes, s.corpus.is_absolute()
    (['vgg_lstm_baseline'], 'synthetic_quick', 1, True)
    """

    corpus: Path
    results: Path
    preset: str
    models: list[str]
    #: stages run side by side (see :func:`default_lanes`)
    lanes: int = 1
    #: epochs per model when not the recipe's default (robust models see every
    #: utterance twice per epoch, so half the baseline's epochs = same updates)
    asr_epochs: dict[str, int] = field(default_factory=dict)
    #: overrides of every ASR stage (the quick demo's faster escape from CTC's
    #: blank plateau)
    asr_overrides: list[str] = field(default_factory=list)
    ecapa_overrides: list[str] = field(default_factory=list)
    probe_overrides: list[str] = field(default_factory=list)
    eval_overrides: list[str] = field(default_factory=list)
    #: the study's folder under ``results``
    study_name: str = "study"

    @classmethod
    def make(
        cls, quick: bool, data_dir, results_dir, full: bool = False
    ) -> DemoSettings:
        """The default study, (``quick``) a small one of one architecture, or
        (``full``) the default study's models evaluated at full power.
        Paths are made absolute: the stages run in other folders.

        Example
        -------
        >>> full = DemoSettings.make(quick=False, data_dir="d", results_dir="r", full=True)
        >>> full.results.name, full.study_name, full.models[-1]
        ('demo', 'study_full', 'blstm_robust')
        """
        data_dir, results_dir = Path(data_dir).resolve(), Path(results_dir).resolve()
        if quick and full:
            raise ValueError(
                "--full evaluates the default demo's four models; it has no quick "
                "version (use --quick alone for a few-minute run)"
            )
        if full:
            settings = cls.make(False, data_dir, results_dir)
            # the same corpus, ASRs, verifier and probes as the default demo
            # (a finished demo's stages are reused), then every test utterance
            # of the 16 unseen speakers (400) at five conditions, all 4,800
            # same-speaker pairs and twice as many different-speaker ones
            # (14,400 trials per cell); PESQ on 5 utterances per speaker
            settings.study_name = "study_full"
            settings.eval_overrides = [
                "--utts_per_speaker=null",
                "--conditions=[clean,snr20,snr10,snr5,snr0]",
                "--negatives_per_positive=2",
                "--pesq_per_speaker=5",
            ]
            return settings
        if quick:
            return cls(
                corpus=data_dir / "synthetic_quick",
                results=results_dir / "demo_quick",
                preset="quick",
                # one ASR: nothing heavy to run beside it
                lanes=1,
                # one model: a robust model trained for the quick budget does
                # not learn (96.6% CER after 3 epochs, measured)
                models=["vgg_lstm_baseline"],
                # 2304 short utterances x 3 epochs (see the quick corpus in
                # speechbrain_probe.data.synthetic.PRESETS); batch 4 costs
                # about as much per epoch as 8 and makes twice the updates, and
                # an intermediate CTC loss on blstm1 shortens the gradient path
                # out of CTC's blank plateau. Three epochs of the recipe's narrow
                # model (8 and 16 filters, 96 LSTM units) end at 34.8% test CER
                # where two of the earlier widths (16/32, 160) ended at 46.6%,
                # in 0.76x the time (docs/results.md)
                asr_epochs={"vgg_lstm_baseline": 3},
                asr_overrides=[
                    "--batch_size=4",
                    "--inter_ctc_layer=blstm1",
                    "--lr_warmup_steps=80",
                ],
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
                    "--pesq_per_speaker=1",
                    "--n_boot=200",
                    "--conditions=[clean,snr0]",
                ],
            )
        return cls(
            corpus=data_dir / "synthetic",
            results=results_dir / "demo",
            preset="default",
            lanes=default_lanes(),
            models=[
                "vgg_lstm_baseline",
                "vgg_lstm_robust",
                "blstm_baseline",
                "blstm_robust",
            ],
            # robust models see every utterance twice per epoch (clean and
            # noisy): half the baseline's epochs (VGG-LSTM 6, pure-LSTM 4) is
            # the same number of updates
            asr_epochs={"vgg_lstm_robust": 3, "blstm_robust": 2},
            # the 30-minute budget: a 2-epoch ECAPA, 3 test utterances per
            # speaker (48 positive + 48 negative trials per cell), PESQ on one
            # of them per speaker (16 per cell; PESQ was 72% of the scoring
            # time, and every reconstruction sits at its floor, 1.0-1.2)
            ecapa_overrides=["--number_of_epochs=2"],
            # probes on the whole training set (375 steps an epoch), at most 2
            # epochs, a layer stopping when its validation L1 (100 dev
            # utterances) does not improve. Measured on the demo's VGG-LSTM
            # baseline (valid L1 of blstm1): the old 45 steps (120 utterances
            # x 3 epochs) 0.093, one whole epoch 0.078, two 0.072, three
            # 0.071; the deep layers were best at epoch 2. No prefetch
            # thread: the two lanes already fill the cores.
            probe_overrides=[
                "--number_of_epochs=2",
                "--early_stopping_patience=1",
                "--prefetch=False",
            ],
            eval_overrides=["--utts_per_speaker=3", "--pesq_per_speaker=1"],
        )


def plan_stages(
    s: DemoSettings,
    python: str = sys.executable,
    recipes: Path = RECIPES_DIR,
    corpus_seed: int = 0,
) -> list[Stage]:
    """The recipe commands of the study, in order (corpus excluded).

    Example
    -------
    >>> s = DemoSettings.make(quick=True, data_dir="data", results_dir="results")
    >>> [(st.name, st.needs) for st in plan_stages(s)]  # doctest: +NORMALIZE_WHITESPACE
    [('ASR vgg_lstm_baseline', ()), ('ECAPA verifier', ()),
     ('probes vgg_lstm_baseline', ('ASR vgg_lstm_baseline',)),
     ('evaluation + report', ('ASR vgg_lstm_baseline', 'ECAPA verifier',
                              'probes vgg_lstm_baseline'))]
    >>> plan_stages(s)[0].command[1:3]
    ['recipes/Synthetic/ASR/CTC/train_asr.py', 'recipes/Synthetic/ASR/CTC/hparams/vgg_lstm.yaml']
    """
    threads = stage_threads(s.lanes)
    synthetic = Path(recipes) / "Synthetic"
    corpus = [
        f"--data_folder={s.corpus}",
        f"--corpus_preset={s.preset}",
        f"--corpus_seed={corpus_seed}",
    ]

    def recipe(name, folder, script, yaml, args, done_marker, needs=()) -> Stage:
        """``python recipes/Synthetic/<folder>/<script> <folder>/hparams/<yaml> args``"""
        command = [
            python,
            str(synthetic / folder / script),
            str(synthetic / folder / "hparams" / yaml),
            *args,
        ]
        return Stage(name, command, done_marker, tuple(needs))

    asr = s.results / "asr"
    stages = []
    for model in s.models:
        arch, training = astuple(ModelId.parse(model))
        epochs = s.asr_epochs.get(model)
        stages.append(
            recipe(
                f"ASR {model}",
                "ASR/CTC",
                "train_asr.py",
                f"{arch}.yaml",
                [
                    *corpus,
                    f"--training={training}",
                    f"--output_root={asr}",
                    f"--num_threads={threads}",
                    *([f"--number_of_epochs={epochs}"] if epochs else []),
                    *s.asr_overrides,
                ],
                asr / model / "export" / "hyperparams.yaml",
            )
        )
    ecapa = s.results / "ecapa"
    stages.append(
        recipe(
            "ECAPA verifier",
            "SpeakerRec/ECAPA",
            "train_ecapa.py",
            "ecapa.yaml",
            [*corpus, f"--output_folder={ecapa}", *s.ecapa_overrides],
            ecapa / "model" / "hyperparams.yaml",
        )
    )
    for model in s.models:
        arch, training = astuple(ModelId.parse(model))
        out = s.results / "probe" / model / "all_layers"
        stages.append(
            recipe(
                f"probes {model}",
                "Probe/Highway",
                "train_probe.py",
                "all_layers.yaml",
                [
                    *corpus,
                    f"--arch={arch}",
                    f"--training={training}",
                    f"--asr_folder={asr}",
                    f"--output_folder={out}",
                    *s.probe_overrides,
                ],
                out / "valid_l1.csv",
                needs=[f"ASR {model}"],
            )
        )
    study = s.results / s.study_name
    stages.append(
        recipe(
            "evaluation + report"
            if s.study_name == "study"
            else "full evaluation + report",
            "Probe/Highway",
            "evaluate.py",
            "evaluate.yaml",
            [
                f"--data_folder={s.corpus}",
                f"--asr_folder={asr}",
                f"--probe_folder={s.results / 'probe'}",
                f"--output_folder={study}",
                f"--ecapa_source={ecapa / 'model'}",
                f"--use_models=[{','.join(s.models)}]",
                *s.eval_overrides,
            ],
            study / "report.html",
            needs=[st.name for st in stages],
        )
    )
    return stages


def main(argv: list[str] | None = None) -> int:
    """Run (or resume) the study; print where the report is."""
    parser = argparse.ArgumentParser(
        prog="python -m speechbrain_probe.demo", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small corpus, one architecture"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="the default demo's models evaluated at full power (make study): "
        "all 400 test utterances, 5 conditions, 14,400 trials per cell",
    )
    parser.add_argument("--data-dir", default="data", help="folder of the corpora")
    parser.add_argument("--results-dir", default="results", help="folder of results")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument(
        "--lanes",
        type=int,
        default=None,
        help="stages run side by side (default: 2 on 2+ cores; 1 for --quick)",
    )
    parser.add_argument(
        "--corpus-only", action="store_true", help="build the corpus and stop"
    )
    parser.add_argument(
        "--recipes-dir",
        type=Path,
        default=RECIPES_DIR,
        help="the repository's recipes/ folder (default: ./recipes)",
    )
    args = parser.parse_args(argv)
    if not (args.recipes_dir / "Synthetic").is_dir():
        raise SystemExit(
            f"no recipes in {args.recipes_dir.resolve()}: run the demo from the "
            "repository root (make demo), or pass --recipes-dir=<repository>/recipes"
        )
    # a missing extra or a broken install (e.g. a torchaudio built for another
    # torch) stops here, in seconds, not in the first ASR stage minutes later
    require_extra("demo")
    check_environment()

    try:
        settings = DemoSettings.make(
            args.quick, args.data_dir, args.results_dir, full=args.full
        )
    except ValueError as err:
        raise SystemExit(str(err)) from None
    if args.lanes is not None:
        settings.lanes = max(1, args.lanes)
    # one demo at a time per results folder: two would train into the same
    # save folders (and build the same corpus) at once
    try:
        with folder_lock(settings.results, "a demo run", wait=False):
            return _run_demo(args, settings)
    except FolderBusy as busy:
        raise SystemExit(f"{busy}; this demo did nothing") from None


def demo_corpus(settings: DemoSettings, seed: int = 0) -> dict:
    """Build (or reuse) the demo's corpus; return its ``corpus.json``.

    The results folder keeps the corpus' seed and settings that its models
    were trained on (``corpus.json`` there): a corpus built with other settings
    (e.g. by an earlier version's preset) stops the demo, with the folders to
    delete, before any stage reuses models trained on other data.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> s = DemoSettings.make(quick=True, data_dir=tmp / "d", results_dir=tmp / "r")
    >>> (s.results / "corpus.json").parent.mkdir(parents=True)
    >>> _ = (s.results / "corpus.json").write_text('{"seed": 0, "settings": {}}')
    >>> demo_corpus(s)
    Traceback (most recent call last):
    SystemExit: ...results in .../r/demo_quick were made from another corpus...
    """
    record = settings.results / "corpus.json"
    redo = (
        f"delete {settings.corpus} and {settings.results} (its models and "
        "results were trained on it) and run the demo again"
    )
    wanted = {"seed": seed, "settings": preset_settings(settings.preset)}
    if record.is_file() and json.loads(record.read_text()) != wanted:
        raise SystemExit(
            f"the results in {settings.results} were made from another corpus "
            f"than the {settings.preset} preset builds now (an earlier version's "
            f"settings?): {redo}"
        )
    try:
        info = build_corpus(settings.corpus, seed=seed, preset=settings.preset)
    except ValueError as err:
        raise SystemExit(f"{err}.\nFor the demo: {redo}") from None
    settings.results.mkdir(parents=True, exist_ok=True)
    atomic_write_text(record, json.dumps(wanted, indent=1))
    return info


def _run_demo(args, settings: DemoSettings) -> int:
    stages = (
        []
        if args.corpus_only
        else plan_stages(settings, recipes=args.recipes_dir, corpus_seed=args.seed)
    )
    started = time.time()
    print(f"built-in corpus ({settings.preset}) in {settings.corpus.resolve()}")
    info = demo_corpus(settings, seed=args.seed)
    print(format_sizes(info["sizes"]))
    noise = info["sizes"].get("noise", {})
    for split, counts in noise.items():
        text = ", ".join(f"{n} {cat}" for cat, n in counts.items())
        print(f"noise bank {split}: {text}")
    print(
        f"vocabulary of the training transcripts: {info['vocabulary']} words; "
        f"built in {info['build_seconds']} s (seed {info['seed']})"
    )
    if not stages:
        return 0
    try:
        env, allocator = stage_env(stage_threads(settings.lanes))
    except ValueError as err:
        raise SystemExit(str(err)) from None
    print(
        f"{len(stages)} stages, {settings.lanes} at a time, "
        f"{env['OMP_NUM_THREADS']} torch thread(s) each; malloc: "
        + (
            allocator
            or f"glibc with GLIBC_TUNABLES={env.get('GLIBC_TUNABLES')} (neither the "
            "cmeel-mimalloc wheel nor a system jemalloc was found: the demo runs, "
            "with about 10% more memory)"
        )
    )
    sys.stdout.flush()  # before the stages write to the same stream
    try:
        summary = run_stages(
            stages,
            lanes=settings.lanes,
            log_dir=settings.results / "logs",
            env=env,
            cwd=Path.cwd(),
        )
    except StageFailed as failure:
        raise SystemExit(
            f"{failure}\n\nFix the cause and run the demo again: finished stages "
            "are kept and a stopped one resumes from its last checkpoint."
        ) from None
    for name, minutes in summary.minutes.items():
        start, end = summary.spans[name]
        print(f"  {name}: {minutes:.1f} min (from {start:.1f} to {end:.1f})")
    if summary.peak_rss_bytes:
        print(
            f"peak memory of the stages, all processes together: "
            f"{summary.peak_rss_bytes / 2**30:.2f} GiB resident, while "
            + " and ".join(summary.peak_during)
            + " ran; "
            f"{summary.peak_pss_bytes / 2**30:.2f} GiB counting each shared page "
            "once (proportional set size)"
        )
    report = stages[-1].done_marker.resolve()
    print(f"\nReport: {report}\n(open it in a browser: file://{report})")
    print(f"demo finished in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
