#!/usr/bin/env python3
"""Recipe: what does each layer of YOUR model hear, on YOUR speech? One command.

Give a pretrained ASR (an ASR this project exported, a SpeechBrain
``EncoderASR`` / ``EncoderDecoderASR`` directory or hub id, a Hugging Face
Whisper / wav2vec2 / HuBERT / WavLM directory) and SpeechBrain CSV manifests
(``ID``, ``wav``, ``spk_id``) of the speech to train the probes on and of the
speech to test on; optionally noises to mix into the test speech. This script

1. checks every manifest row and the model's layers before any long work;
2. prepares the data (16 kHz mono copies of the test audio, noisy test sets
   at ``snrs`` with exact clean references), in ``<output_folder>/data``;
3. trains a non-contextual Highway probe per layer (all layers of a model in
   one pass), in ``<output_folder>/probes/<model>``;
4. reconstructs the test utterances from every layer (Griffin-Lim) and scores
   them (speaker EER with GE2E, and ECAPA when given; STOI, PESQ), then writes
   the report and the listening page, ``<output_folder>/study/report.html``.

Run from this folder::

    python probe_model.py hparams/probe_model.yaml --asr_source=/models/wav2vec2-base \\
        --train_csv=my/train.csv --valid_csv=my/dev.csv --test_csv=my/test.csv \\
        --noise_csv=my/noises.csv

Several models side by side on one page: ``--models="{w2v: /models/w2v,
whisper: /models/whisper-small}"``. Each stage resumes when the same command
runs again (probes from their last checkpoint, finished audio and scores kept).
"""

import logging
import sys
from pathlib import Path

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.distributed import if_main_process, run_on_main
    from speechbrain.utils.epoch_loop import EpochCounter
    from speechbrain.utils.train_logger import FileTrainLogger
except (ImportError, OSError) as error:
    from speechbrain_probe.environment import import_failure

    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.user_corpus import (
    load_audio,
    prepare_user_corpus,
)
from speechbrain_probe.devices import run_device
from speechbrain_probe.evaluation.study import ModelSpec, run_study
from speechbrain_probe.extras import extras_for_hparams, require_extra
from speechbrain_probe.frozen.load import load_asr
from speechbrain_probe.probe.brain import ProbeBrain
from speechbrain_probe.probe.model import build_probes
from speechbrain_probe.probe.noise_mixer import NoiseMixer
from speechbrain_probe.probe.valid_l1 import write_valid_l1
from speechbrain_probe.report import build_report

logger = logging.getLogger(__name__)


def dataio_prepare(hparams, data_folder):
    """Train and valid datasets of ``(id, sig)`` from the prepared manifests.

    Audio of any rate and channel count is read as 16 kHz mono; files longer
    than ``max_train_seconds`` contribute one fixed piece of that length.
    ``train_utts`` / ``valid_utts`` keep the first N of a seeded shuffle.
    """
    datasets = {}
    for split, limit in (
        ("train", hparams["train_utts"]),
        ("valid", hparams["valid_utts"]),
    ):
        data = sb.dataio.dataset.DynamicItemDataset.from_csv(
            str(Path(data_folder) / f"{split}.csv")
        )
        ids = list(data.data_ids)
        if limit and limit < len(ids):
            gen = torch.Generator().manual_seed(int(hparams["seed"]))
            keep = {
                ids[i] for i in torch.randperm(len(ids), generator=gen)[:limit].tolist()
            }
            data = data.filtered_sorted(key_test={"id": lambda i, keep=keep: i in keep})
        datasets[split] = data.filtered_sorted(sort_key="duration")

    max_seconds = hparams["max_train_seconds"]

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(utt_id, wav):
        return torch.from_numpy(load_audio(wav, 16000, max_seconds, utt_id))

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()), ["id", "sig"])
    return datasets["train"], datasets["valid"]


def models_to_probe(hparams) -> dict:
    """``{name: asr source}``: ``models`` when given, else ``model_name`` ->
    ``asr_source``."""
    models = hparams["models"]
    if models:
        return {str(name): str(source) for name, source in dict(models).items()}
    if not hparams["asr_source"]:
        raise ValueError(
            "no model to probe: give --asr_source=<model directory or hub id> (or "
            '--models="{name: source, ...}")'
        )
    return {str(hparams["model_name"]): str(hparams["asr_source"])}


def load_and_check(models: dict, hparams, device) -> dict:
    """Load every model and check its layers (before any long work).

    Returns ``{name: (asr, layers)}``; ``layers: null`` takes each model's
    default layers (its top-level layers in model order).
    """
    loaded = {}
    for name, source in models.items():
        asr = load_asr(source, device=device, whisper_window=hparams["whisper_window"])
        wanted = hparams["layers"] or asr.default_layers()
        try:
            layers = asr.validate_layers(wanted)
        except (KeyError, ValueError) as err:
            raise type(err)(f"model {name} ({source}): {err.args[0]}") from None
        logger.info("model %s: %s; probing %s", name, asr.describe(), layers)
        loaded[name] = (asr, layers)
    return loaded


def train_probes(name, asr, layers, hparams, run_opts, train_data, valid_data):
    """Train the probes of one model (resumable); returns its save folder."""
    folder = Path(hparams["output_folder"]) / "probes" / name
    probes = build_probes(
        asr,
        layers,
        n_highway=hparams["n_highway"],
        gate_bias=hparams["gate_bias"],
        target_mel=hparams["target_mel"],
    )
    counter = EpochCounter(limit=hparams["number_of_epochs"])
    checkpointer = Checkpointer(
        folder / "save", recoverables={"counter": counter, "probes": probes}
    )
    add_noise = None
    noise_csv = Path(hparams["data_folder"]) / "noise_train.csv"
    if hparams["train_noise_csv"]:
        add_noise = NoiseMixer(
            noise_csv,
            snr_ranges=hparams["noise_snr_ranges"],
            prob=hparams["noise_prob"],
            seed=hparams["seed"],
        )
    brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        add_noise=add_noise,
        train_logger=FileTrainLogger(folder / "train_log.txt"),
        target_mel=hparams["target_mel"],
        early_stopping_patience=hparams["early_stopping_patience"],
        early_stopping_min_delta=hparams["early_stopping_min_delta"],
        valid_every_steps=hparams["valid_every_steps"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    loader = {"batch_size": hparams["batch_size"], "num_workers": 0}
    brain.fit(
        counter,
        train_data,
        valid_data,
        train_loader_kwargs=loader,
        valid_loader_kwargs=loader,
    )
    brain.evaluate(valid_data, min_key="loss", test_loader_kwargs=loader)
    losses = brain.layer_losses()
    best = brain.best_validation()
    if if_main_process():
        write_valid_l1(
            folder / "valid_l1.csv",
            asr,
            losses,
            len(valid_data),
            model=name,
            best=best,
            target_mel=brain.target_mel,
        )
    for layer, value in losses.items():
        print(f"valid_l1 {name} {layer} {value:.5f}")
    return folder / "save"


def main(argv=None) -> int:
    """``probe_model.py hparams/probe_model.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    # what the settings need beyond the core, before anything is written
    require_extra(*extras_for_hparams(hparams_file, overrides))
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    device = run_device(run_opts)
    # 1. the models and their layers, then every manifest row: errors (a missing
    # extra included) come before anything is written
    loaded = load_and_check(models_to_probe(hparams), hparams, device)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    prepare = dict(
        out_dir=hparams["data_folder"],
        train_csv=hparams["train_csv"],
        valid_csv=hparams["valid_csv"],
        test_csv=hparams["test_csv"],
        noise_csv=hparams["noise_csv"],
        train_noise_csv=hparams["train_noise_csv"],
        snrs=hparams["snrs"],
        data_root=hparams["data_root"],
        max_test_seconds=hparams["max_test_seconds"],
        seed=hparams["study_seed"],
    )
    # 2. the data, prepared once (the second call reads what the first wrote)
    run_on_main(prepare_user_corpus, kwargs=prepare)
    prepared = prepare_user_corpus(**prepare, progress=False)

    # 3. probes, model after model
    train_data, valid_data = dataio_prepare(hparams, hparams["data_folder"])
    specs = []
    for name, (asr, layers) in loaded.items():
        save = train_probes(
            name, asr, layers, hparams, run_opts, train_data, valid_data
        )
        specs.append(
            ModelSpec(
                name=name,
                asr=asr.source,
                probes=str(save),
                whisper_window=hparams["whisper_window"],
            )
        )

    # 4. the study and its report
    utts_per_speaker, n_boot = hparams["utts_per_speaker"], hparams["n_boot"]
    if run_opts.get("debug"):
        utts_per_speaker, n_boot = 2, min(n_boot, 50)
    verifiers = {"ge2e": None}
    if hparams["ecapa_source"]:
        verifiers["ecapa"] = hparams["ecapa_source"]
    study_kwargs = dict(
        data_folder=hparams["data_folder"],
        output_folder=hparams["study_folder"],
        models=specs,
        conditions=prepared["conditions"],
        utts_per_speaker=utts_per_speaker,
        verifiers=verifiers,
        griffin_lim_iters=hparams["griffin_lim_iters"],
        n_boot=n_boot,
        n_jobs=hparams["n_jobs"],
        batch_size=hparams["batch_size"],
        device=device,
        seed=hparams["study_seed"],
        num_threads=hparams["num_threads"],
        pesq_per_speaker=hparams["pesq_per_speaker"],
        asrs={name: asr for name, (asr, _) in loaded.items()},
    )
    run_on_main(run_study, kwargs=study_kwargs)
    if if_main_process():
        page = build_report(
            hparams["study_folder"],
            title=hparams["title"],
            note=hparams["note"] or "",
            verbose=False,
        )
        print(f"report: {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
