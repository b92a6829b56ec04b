"""Run the whole evaluation: every (model x layer x condition), resumable.

One call of :func:`run_study` goes from trained ASR models and their trained
probes to the study's result files (the report is built from them by
:func:`speechbrain_probe.report.build_report`; the evaluation recipe calls both):

1. pick a fixed subset of the unseen test speakers' utterances and a fixed,
   balanced trial list (``subset.csv``, ``trials.csv``);
2. write the reference audio and every probe's reconstruction turned into
   audio (one ASR forward per batch feeds all probes of a model) by the
   vocoder of the probes' target mel (:func:`study_vocoder`): Griffin-Lim
   for the paper mel, the universal HiFi-GAN for ``target_mel: hifigan``;
   copy synthesis uses the same vocoder, and all audio is kept at the
   input's rate and length;
3. score every cell (speaker EER/minDCF per verifier, STOI and PESQ against
   the clean reference), each stored as it finishes in ``cells/``;
4. write ``study.json`` (models with their layers in model order,
   conditions, verifiers, vocoder), ``metrics.csv``, ``samples.csv``,
   ``asr_results.csv``, ``excluded.csv`` and ``figure3_mels.npz``, through
   :mod:`speechbrain_probe.result_rows`; then the paired robust - baseline
   statistics and the claims' verdicts, ``paired.csv`` and ``claims.csv``
   (:mod:`speechbrain_probe.evaluation.paired`).

Every 95% interval resamples speakers (:mod:`speechbrain_probe.metrics.bootstrap`).

Finished audio and cells are never recomputed, so a killed run resumes and a
second run on a finished study rewrites the same result files.

Speed: this process runs on ``num_threads`` torch threads (default one) and
one pool of ``n_jobs`` single-threaded worker processes lives for the whole
study (:mod:`~speechbrain_probe.evaluation.pool`): the workers run every
synthesis (Griffin-Lim, or HiFi-GAN with its weights loaded once per worker)
and every STOI/PESQ, while this process runs the ASR and probe
forwards and the speaker embeddings. The STOI/PESQ jobs of all unfinished
cells are queued at once, so the workers never wait for the embeddings.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import torch
from tqdm import tqdm

from speechbrain_probe import study_info
from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.data.audio import read_checked
from speechbrain_probe.data.manifest import write_manifest
from speechbrain_probe.evaluation.paired import NoPerItemValues, write_paired_results
from speechbrain_probe.evaluation.pool import EvaluationPool, vocoder_kind
from speechbrain_probe.evaluation.scoring import (
    INTERVALS,
    cell_metrics,
    load_cell,
    save_cell,
    score_cell,
    submit_quality,
)
from speechbrain_probe.evaluation.selection import first_per_speaker, select_subset
from speechbrain_probe.evaluation.synthesis import (
    write_reconstructions,
    write_references,
)
from speechbrain_probe.features import HIFIGAN_MEL, LogMelSpectrogram
from speechbrain_probe.metrics.quality import Exclusion, write_exclusions
from speechbrain_probe.metrics.trials import load_trials, make_trials, save_trials
from speechbrain_probe.result_rows import (
    PAIRED_N_BOOT,
    MetricRow,
    Sample,
    read_asr_results,
    sample_path,
    save_figure3_mels,
    write_asr_results,
    write_metrics,
    write_samples,
)
from speechbrain_probe.vocabulary import CONDITIONS

__all__ = ["ModelSpec", "model_order", "run_study", "study_vocoder"]


@dataclass(frozen=True)
class ModelSpec:
    """One probed ASR model of the study.

    Arguments
    ---------
    name : str
        E.g. ``vgg_lstm_baseline`` or ``whisper_small`` (a folder and row name).
    asr : str
        ASR source (exported directory, Hugging Face directory or hub id) for
        ``load_asr``.
    probes : str
        The probes' checkpoint folder (``train_probe.py``'s save folder).
    arch : str, optional
        A paper architecture (``vgg_lstm`` or ``blstm``): the report then
        uses the paper's Table 2 layout. Empty for any other model.
    training : str, optional
        ``baseline`` or ``robust`` for a paper model; empty otherwise.
    asr_results : str, optional
        The ASR recipe's ``asr_results.csv`` (copied into Table 1).
    label : str, optional
        Display name in the report (default: ``name``).
    whisper_window : str, optional
        ``full`` or ``trim``, for a Whisper model (as its probes were trained;
        :class:`~speechbrain_probe.frozen.hf_encoder.HFEncoderASR`).

    Example
    -------
    >>> ModelSpec.from_dict("w2v", {"asr": "models/w2v", "probes": "p/save"}).arch
    ''
    >>> ModelSpec.from_dict("w2v", {"asr": "models/w2v"})
    Traceback (most recent call last):
    ...
    ValueError: model 'w2v' lacks ['probes'] in the study's models (needs asr and probes; arch, training, asr_results, label and whisper_window are optional)
    """

    name: str
    asr: str
    probes: str
    arch: str = ""
    training: str = ""
    asr_results: str | None = None
    label: str = ""
    whisper_window: str = "full"

    @classmethod
    def from_dict(cls, name: str, values: dict) -> ModelSpec:
        """Build from a YAML mapping, naming missing and unknown keys."""
        missing = [k for k in ("asr", "probes") if k not in values]
        known = {f.name for f in fields(cls)} - {"name"}
        unknown = sorted(set(values) - known)
        if missing or unknown:
            problem = f"lacks {missing}" if missing else f"has unknown keys {unknown}"
            raise ValueError(
                f"model {name!r} {problem} in the study's models (needs asr and "
                "probes; arch, training, asr_results, label and whisper_window are optional)"
            )
        return cls(name=name, **{k: str(v) for k, v in values.items() if v is not None})


def model_order(asr, layers) -> list[str]:
    """``layers`` in the model's order, input side first: a probe checkpoint
    stores its layers by name, which puts ``blstm1`` before ``cnn1``.

    The model's default layers come in forward order, any other declared
    layer in declaration order.

    Example
    -------
    >>> from types import SimpleNamespace
    >>> asr = SimpleNamespace(layers={"cnn1": "a", "cnn2": "b", "blstm1": "c"},
    ...                       default_layers=lambda: ["cnn1", "cnn2", "blstm1"])
    >>> model_order(asr, ["blstm1", "cnn1", "cnn2"])
    ['cnn1', 'cnn2', 'blstm1']
    """
    ranked = list(asr.default_layers()) + [n for n in asr.layers]
    rank = {}
    for name in ranked:
        rank.setdefault(name, len(rank))
    return sorted(layers, key=lambda n: rank.get(n, len(rank)))


def study_vocoder(target, asr_mel) -> str:
    """The vocoder (:data:`~speechbrain_probe.evaluation.pool.VOCODER_KINDS`)
    that turns probes of ``target`` mel into audio: ``griffin_lim`` for the
    ASR's own mel ``asr_mel`` (the paper's), ``hifigan`` for
    :data:`~speechbrain_probe.features.HIFIGAN_MEL`.

    Example
    -------
    >>> from speechbrain_probe.features import MelConfig
    >>> study_vocoder(MelConfig(), MelConfig()), study_vocoder(HIFIGAN_MEL, MelConfig())
    ('griffin_lim', 'hifigan')
    >>> study_vocoder(MelConfig(n_mels=40), MelConfig())
    Traceback (most recent call last):
    ...
    ValueError: no vocoder for probes of the mel 'custom 16000 Hz/hop 200/40 mels': ...
    """
    from speechbrain_probe.probe.target import target_mel_name

    if target == asr_mel:
        return "griffin_lim"
    if target == HIFIGAN_MEL:
        return "hifigan"
    raise ValueError(
        f"no vocoder for probes of the mel {target_mel_name(target)!r}: a study "
        "decodes the ASR's own mel with Griffin-Lim and the HiFi-GAN mel with "
        "HiFi-GAN; train the probes with target_mel: paper or target_mel: hifigan"
    )


def _check_cell_settings(path: Path, settings: dict) -> None:
    """Refuse to mix cells scored under other settings into one study."""
    if path.exists():
        stored = json.loads(path.read_text())
        # studies before the vocoder was recorded all used Griffin-Lim
        stored.setdefault("vocoder", "griffin_lim")
        changed = {
            k: (stored.get(k), v) for k, v in settings.items() if stored.get(k) != v
        }
        if changed:
            text = ", ".join(
                f"{k}: {old} -> {new}" for k, (old, new) in changed.items()
            )
            raise ValueError(
                f"this study's scored cells used other settings ({text}); use a new "
                f"output folder, or delete {path.parent} (and samples/ if "
                "griffin_lim_iters or the vocoder changed) to rescore"
            )
        return
    atomic_write_text(path, json.dumps(settings, indent=1, sort_keys=True))


def _write_samples_csv(study: Path, subset, models, loaded) -> None:
    """``samples.csv``: every audio file of the study."""
    rows = []
    for condition, utterances in subset.items():
        noisy = ["mixture", "noise"] if condition != "clean" else []
        for u in utterances:
            files = [("", "", kind) for kind in ["original", "copy_synthesis", *noisy]]
            files += [
                (s.name, x, "reconstruction")
                for s in models
                for x in loaded[s.name].layers
            ]
            for model, layer, kind in files:
                at = sample_path("samples", condition, model or kind, u.utt_id, layer)
                row = (u.utt_id, u.spk_id, model, layer, condition, kind)
                rows.append(Sample(*row, at.as_posix()))
    write_samples(study / "samples.csv", rows)


def _collect_asr_results(study: Path, models) -> None:
    """Copy each model's ``asr_results.csv`` into the study's, under its spec's
    name, architecture and training."""
    rows = []
    for spec in models:
        path = Path(spec.asr_results or "")
        if spec.asr_results and not path.exists():
            print(f"note: no ASR results at {path}; Table 1 omits {spec.name}")
        elif spec.asr_results:
            rows += [
                replace(row, model=spec.name, arch=spec.arch, training=spec.training)
                for row in read_asr_results(path)
            ]
    if rows:
        write_asr_results(study / "asr_results.csv", rows)


def _figure3(study: Path, subset, models, loaded, condition: str):
    """Probe mels of the first utterance of ``condition`` (the paper's Figure 3)."""
    from speechbrain_probe.probe.inference import reconstruct_mel
    from speechbrain_probe.probe.target import to_target_rate

    if condition not in subset or not subset[condition]:
        return
    utt = subset[condition][0]
    noisy = torch.from_numpy(read_checked(utt.wav)).unsqueeze(0)
    clean = torch.from_numpy(read_checked(utt.clean_wav)).unsqueeze(0)
    by_training: dict[str, dict] = {}
    references = {}
    for spec in models:
        asr, target = loaded[spec.name].asr, loaded[spec.name].target
        rate = asr.mel_config.sample_rate
        mel = LogMelSpectrogram(target)
        with torch.no_grad():
            probes = loaded[spec.name].probes
            mels = reconstruct_mel(asr, probes, noisy.to(asr.device), torch.ones(1))
            references = {
                "clean": mel(to_target_rate(clean, rate, target))[0].numpy(),
                "mixture": mel(to_target_rate(noisy, rate, target))[0].numpy(),
            }
        # paper models: a row per training, a column per arch:layer; any other
        # model: a row of its own
        group = by_training.setdefault(spec.training or spec.name, {})
        for layer, m in mels.items():
            group[f"{spec.arch or spec.name}:{layer}"] = m[0].cpu().numpy()
    save_figure3_mels(
        study / "figure3_mels.npz",
        by_training,
        references,
        f"Probe reconstructions of {utt.utt_id} at {condition}",
    )


@contextlib.contextmanager
def _study_workers(n_jobs, num_threads):
    """This process on ``num_threads`` torch threads (restored afterwards), and
    the study's worker pool (None for one job: work in this process).

    An :class:`EvaluationPool` starts its worker processes at the first job,
    so a study with nothing left to compute starts none. A kill drops the
    queued jobs instead of waiting for them.
    """
    from threadpoolctl import threadpool_limits

    from speechbrain_probe.devices import torch_threads

    n_jobs = n_jobs or os.cpu_count() or 1
    # numpy's BLAS (GE2E's preprocessing and mel, in this process) keeps one
    # thread per core unless limited: beside the workers a GE2E embedding cost
    # 982 CPU-ms instead of 27 (benchmarks/bench_evaluation.py)
    blas = threadpool_limits(num_threads) if num_threads else contextlib.nullcontext()
    with torch_threads(num_threads), blas:
        pool = EvaluationPool(n_jobs) if n_jobs > 1 else None
        finished = False
        try:
            yield pool
            finished = True
        finally:
            if pool is not None:
                pool.close(cancel=not finished)


def run_study(
    data_folder,
    output_folder,
    models: list[ModelSpec],
    conditions=CONDITIONS,
    utts_per_speaker: int | None = 4,
    verifiers: dict | None = None,
    griffin_lim_iters: int = 30,
    n_boot: int = 1000,
    n_jobs: int | None = None,
    batch_size: int = 8,
    device: str | None = None,
    seed: int = 0,
    num_threads: int | None = 1,
    pesq_per_speaker: int | None = None,
    asrs: dict | None = None,
    negatives_per_positive: int = 1,
) -> Path:
    """Evaluate every model x layer x condition; write the result files.

    The report is built from what this writes
    (:func:`speechbrain_probe.report.build_report`), by the caller: the
    evaluation recipe calls both.

    Arguments
    ---------
    data_folder : str or path
        Prepared corpus (``test.csv`` and ``test_snr*.csv``).
    output_folder : str or path
        The study folder (created; an existing one is resumed).
    models : list of ModelSpec
        The probed ASR models.
    conditions : sequence of str
        ``clean`` and any ``snr<N>`` the corpus has (built-in: 20, 10, 5, 0).
    utts_per_speaker : int or None
        Test utterances per unseen speaker (None: all).
    verifiers : dict
        Verifier name -> source: ``{"ge2e": None, "ecapa": "<dir>"}``.
    griffin_lim_iters : int
        Griffin-Lim iterations (the paper: 30); unused when the probes
        predict the HiFi-GAN mel (then HiFi-GAN makes the audio, see
        :func:`study_vocoder`). All models' probes must predict one mel.
    n_boot : int
        Resamples of each cell's 95% intervals (``metrics.csv``; speakers
        resampled, :mod:`speechbrain_probe.metrics.bootstrap`); the paired
        differences take :data:`~speechbrain_probe.result_rows.PAIRED_N_BOOT`.
    n_jobs : int, optional
        Worker processes for the vocoder and STOI/PESQ (default: all cores;
        1: everything runs in this process).
    device : str, optional
        ``cpu``, ``cuda:0``, ...; None: CUDA where available, else the CPU.
    seed : int
        Seed of the subset, the trials, Griffin-Lim and every bootstrap.
    num_threads : int, optional
        Torch threads of this process during the study (restored afterwards;
        None leaves torch's setting). One thread plus worker processes is the
        fast setting on a CPU shared with other jobs.
    pesq_per_speaker : int, optional
        Score PESQ on the first this many utterances of each speaker in every
        cell (STOI and the verifiers use all); None: all. PESQ is most of the
        scoring time (~0.13 CPU-s per 3.5 s utterance, STOI ~0.013).
    negatives_per_positive : int
        Different-speaker trials per same-speaker trial (1: balanced, the
        demo; the full preset uses 2 to pass 10,000 trials per cell).
    asrs : dict, optional
        Model name -> its :class:`~speechbrain_probe.frozen.interface.FrozenASR`,
        already loaded (e.g. for training its probes); the others are loaded
        from their ``ModelSpec.asr``.

    Returns
    -------
    Path
        The study folder (``metrics.csv``, ``samples.csv``, ``asr_results.csv``,
        ``excluded.csv``, ``figure3_mels.npz``, ``paired.csv``, ``claims.csv``,
        ``samples/``, ``cells/``).
    """
    from speechbrain_probe.devices import resolve_device

    device = resolve_device(device)
    # numba (the CPU Griffin-Lim's loops, compiled here when the study runs
    # without workers) logs every compilation step at DEBUG level, which
    # SpeechBrain's experiment log would keep
    logging.getLogger("numba").setLevel(logging.WARNING)
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be unique, got {names}")
    verifiers = {"ge2e": None} if verifiers is None else dict(verifiers)
    conditions = list(conditions)
    with _study_workers(n_jobs, num_threads) as pool:
        started = time.time()
        study = Path(output_folder)
        study.mkdir(parents=True, exist_ok=True)
        subset = select_subset(data_folder, conditions, utts_per_speaker, seed)
        trials = _write_subset_and_trials(
            study, subset[conditions[0]], seed, negatives_per_positive
        )
        loaded = _load_models(models, asrs, device)
        kind, target, rate = _one_vocoder(models, loaded)
        _check_cell_settings(
            study / "cells" / "settings.json",
            dict(
                n_boot=n_boot,
                pesq_per_speaker=pesq_per_speaker,
                griffin_lim_iters=griffin_lim_iters if kind == "griffin_lim" else None,
                verifiers=sorted(verifiers),
                vocoder=kind,
            ),
        )
        scorer = _CellScorer(
            study, subset, trials, verifiers, device, n_boot, seed, pesq_per_speaker
        )
        vocoder = _vocoder(kind, target, griffin_lim_iters, device, seed)
        _write_audio(
            study, subset, models, loaded, vocoder, rate, batch_size, device, pool
        )
        _write_study_info(study, subset, models, loaded, verifiers, vocoder)
        if not (study / "figure3_mels.npz").exists():
            _figure3(study, subset, models, loaded, conditions[-1])
        cells = _study_cells(study, subset, models, loaded)
        metric_rows, exclusions = scorer.score(cells, pool)
        if pool is not None:
            pool.close()  # the workers have nothing left to do
        write_metrics(study / "metrics.csv", metric_rows)
        write_exclusions(study / "excluded.csv", exclusions)
        _collect_asr_results(study, models)
        _write_paired_results(study, seed)
        print(
            f"evaluation: {len(cells)} cells, {len(exclusions)} exclusions, "
            f"{time.time() - started:.0f} s; results in {study}"
        )
        return study


def _write_subset_and_trials(study: Path, utterances, seed, negatives_per_positive):
    """Write ``subset.csv`` and ``trials.csv`` (the trials a study keeps:
    another subset or seed is refused); return the trials."""
    write_manifest(
        study / "subset.csv",
        [dict(ID=u.utt_id, spk_id=u.spk_id, wrd=u.words) for u in utterances],
        fields=("ID", "spk_id", "wrd"),
    )
    trials_path = study / "trials.csv"
    trials = make_trials(
        [(u.utt_id, u.spk_id) for u in utterances],
        seed=seed,
        negatives_per_positive=negatives_per_positive,
    )
    if trials_path.exists() and load_trials(trials_path) != trials:
        raise ValueError(
            f"{trials_path} holds other trials than this configuration makes (another "
            "subset or seed); use a new output folder or delete the study's cells/"
        )
    save_trials(trials_path, trials)
    speakers = {u.spk_id for u in utterances}
    print(
        f"evaluation subset: {len(utterances)} utterances of {len(speakers)} unseen "
        f"speakers, {len(trials)} trials"
    )
    return trials


@dataclass(frozen=True)
class _Loaded:
    """A model of the study, loaded: its ASR, probes and layers in model order."""

    asr: object
    probes: object
    layers: list[str]

    @property
    def target(self):
        """The mel its probes predict (the ASR's own, or HiFi-GAN's)."""
        return getattr(self.probes, "target_mel", None) or self.asr.mel_config


def _load_models(models, asrs, device) -> dict[str, _Loaded]:
    """Each model's ASR (from ``asrs`` where given) and trained probes."""
    from speechbrain_probe.frozen.load import load_asr
    from speechbrain_probe.probe.inference import load_trained_probes

    loaded = {}
    for spec in models:
        asr = (asrs or {}).get(spec.name)
        if asr is None:
            asr = load_asr(spec.asr, device=device, whisper_window=spec.whisper_window)
        else:
            asr.to(device)
        probes = load_trained_probes(spec.probes, asr, device=device)
        loaded[spec.name] = _Loaded(asr, probes, model_order(asr, list(probes)))
    return loaded


def _one_vocoder(models, loaded: dict[str, _Loaded]):
    """The vocoder kind and mel of every model's probes, and the input rate:
    one for the whole study (else a ValueError saying why). Griffin-Lim
    decodes the ASR's own mel, so one Griffin-Lim mel is one mel config."""
    from speechbrain_probe.probe.target import target_mel_name

    if not models:
        raise ValueError("the study needs at least one model")
    first = loaded[models[0].name]
    kind = study_vocoder(first.target, first.asr.mel_config)
    rate = first.asr.mel_config.sample_rate
    for spec in models[1:]:
        model = loaded[spec.name]
        other = study_vocoder(model.target, model.asr.mel_config)
        if (other, model.target) != (kind, first.target):
            raise ValueError(
                f"the probes of {spec.name} predict the mel "
                f"{target_mel_name(model.target)!r} ({other}) but those of "
                f"{models[0].name} the mel {target_mel_name(first.target)!r} "
                f"({kind}); a study turns every reconstruction into audio "
                "with one vocoder: evaluate them in separate studies (and "
                "compare the two with python -m speechbrain_probe.compare)"
            )
        if model.asr.mel_config.sample_rate != rate:
            raise ValueError(
                f"model {spec.name} hears {model.asr.mel_config.sample_rate} Hz audio "
                f"but {models[0].name} {rate} Hz; evaluate them in separate studies"
            )
    return kind, first.target, rate


def _vocoder(kind: str, target, griffin_lim_iters: int, device, seed: int):
    """The study's vocoder (:func:`study_vocoder`'s kind)."""
    if kind == "griffin_lim":
        from speechbrain_probe.vocoder import GriffinLimVocoder

        return GriffinLimVocoder(target, griffin_lim_iters, device=device, seed=seed)
    from speechbrain_probe.hifigan import HifiGanUniversalVocoder

    return HifiGanUniversalVocoder(device=device)


def _write_audio(
    study, subset, models, loaded, vocoder, rate, batch_size, device, pool
):
    """Every condition's references, every model's reconstructions, and
    ``samples.csv`` listing them."""
    samples = study / "samples"
    for condition, utts in subset.items():
        write_references(
            samples,
            condition,
            utts,
            vocoder,
            vocoder.config,
            pool=pool,
            input_rate=rate,
        )
    for spec in models:
        asr, probes = loaded[spec.name].asr, loaded[spec.name].probes
        for condition, utts in subset.items():
            write_reconstructions(
                samples,
                condition,
                spec.name,
                utts,
                asr,
                probes,
                vocoder,
                batch_size,
                device,
                pool,
            )
    _write_samples_csv(study, subset, models, loaded)


def _write_study_info(study, subset, models, loaded, verifiers, vocoder) -> None:
    """``study.json``: models with their layers in model order, conditions,
    verifiers, vocoder."""
    described = [
        study_info.StudyModel(
            spec.name,
            tuple(loaded[spec.name].layers),
            spec.arch,
            spec.training,
            spec.asr,
            spec.label,
        )
        for spec in models
    ]
    kind = vocoder_kind(vocoder)
    info = study_info.StudyInfo(described, list(subset), list(verifiers), kind)
    study_info.write_study_info(study / study_info.STUDY_INFO, info)


@dataclass(frozen=True, eq=False)
class _Cell:
    """One scored cell: a model's layer (``spec`` None: a reference row,
    ``original`` or ``copy_synthesis``) under one condition."""

    spec: ModelSpec | None
    layer: str
    condition: str
    wavs: list
    clean: list

    @property
    def owner(self) -> str:
        return self.spec.name if self.spec else "_reference"

    def path(self, study: Path) -> Path:
        return study / "cells" / self.condition / self.owner / f"{self.layer}.json"

    def rows(self, result: dict) -> tuple[list[MetricRow], list[Exclusion]]:
        """The cell's rows of ``metrics.csv`` and ``excluded.csv``."""
        spec = self.spec or ModelSpec("", "", "")
        where = f"{self.owner}/{self.layer}/{self.condition}"
        return [
            MetricRow(
                spec.name, spec.arch, spec.training, self.layer, self.condition, m, *v
            )
            for m, v in sorted(result["metrics"].items())
        ], [
            Exclusion(e["utt_id"], e["metric"], f"{where}: {e['reason']}")
            for e in result["excluded"]
        ]


def _study_cells(study: Path, subset, models, loaded) -> list[_Cell]:
    """Every cell, condition by condition: the references, then each model's
    layers."""
    cells = []
    for condition, utterances in subset.items():
        audio = functools.partial(_audio, study / "samples", condition, utterances)
        clean = audio("original")
        heard = audio("original" if condition == "clean" else "mixture")
        cells.append(_Cell(None, "original", condition, heard, clean))
        cells.append(
            _Cell(None, "copy_synthesis", condition, audio("copy_synthesis"), clean)
        )
        for spec in models:
            for layer in loaded[spec.name].layers:
                cells.append(
                    _Cell(spec, layer, condition, audio(spec.name, layer), clean)
                )
    return cells


def _audio(samples: Path, condition, utterances, kind, layer=None) -> list[Path]:
    return [sample_path(samples, condition, kind, u.utt_id, layer) for u in utterances]


class _CellScorer:
    """Scores the study's cells, or reads them where stored."""

    def __init__(
        self, study, subset, trials, verifiers, device, n_boot, seed, pesq_per_speaker
    ):
        self.study, self.subset, self.trials = study, subset, trials
        self.sources, self.built, self.device = verifiers, {}, device
        self.n_boot, self.seed = n_boot, seed
        first = next(iter(subset.values()))
        self.pesq_ids = first_per_speaker(first, pesq_per_speaker)
        self.speaker_of = {u.utt_id: u.spk_id for u in first}

    def score(self, cells: list[_Cell], pool):
        """Metric rows and exclusions of every cell, scored where not stored
        (a cell stored without per-item values, by an older version, too).

        STOI/PESQ of every unfinished cell go to the workers at once; this
        process embeds cell after cell meanwhile.
        """
        handles = {}
        for cell in cells if pool is not None else []:
            if load_cell(cell.path(self.study), require_items=True) is None:
                ids = self._ids(cell)
                handles[cell] = submit_quality(
                    pool, ids, cell.wavs, cell.clean, self.pesq_ids
                )
        metric_rows, exclusions = [], []
        for cell in tqdm(cells, desc="scoring cells"):
            rows, excluded = cell.rows(self._result(cell, handles.pop(cell, None)))
            metric_rows += rows
            exclusions += excluded
        return metric_rows, exclusions

    def _ids(self, cell: _Cell) -> list[str]:
        return [u.utt_id for u in self.subset[cell.condition]]

    def _result(self, cell: _Cell, quality_handle) -> dict:
        """A cell's result: stored (its intervals made current), or scored
        and stored."""
        path = cell.path(self.study)
        result = load_cell(path, require_items=True)
        if result is None:
            result = score_cell(
                self._ids(cell),
                cell.wavs,
                cell.clean,
                self.trials,
                self._verifiers(),
                n_boot=self.n_boot,
                seed=self.seed,
                quality_handle=quality_handle,
                pesq_ids=self.pesq_ids,
                speaker_of=self.speaker_of,
            )
        elif result.get("intervals") != INTERVALS:
            # an older version resampled trials and utterances: the intervals
            # again from the cell's per-item values, no audio scored again
            result["metrics"] = cell_metrics(
                result, self.trials, self.speaker_of, self.n_boot, self.seed
            )
            result["intervals"] = INTERVALS
        else:
            return result
        save_cell(path, result)
        return result

    def _verifiers(self) -> dict:
        """The verifiers, built at the first cell that needs them."""
        from speechbrain_probe.metrics.speaker import build_verifier

        for name, source in self.sources.items():
            if name not in self.built:
                self.built[name] = build_verifier(name, source, self.device)
        return self.built


def _write_paired_results(study: Path, seed: int) -> None:
    """``paired.csv`` and ``claims.csv`` (:func:`write_paired_results`), or a
    note why the study has none."""
    try:
        write_paired_results(study, n_boot=PAIRED_N_BOOT, seed=seed)
    except NoPerItemValues as error:
        print(f"note: no paired.csv or claims.csv: {error}")
