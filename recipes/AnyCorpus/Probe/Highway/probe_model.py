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

from speechbrain_probe.environment import import_failure

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.checkpoints import Checkpointer
    from speechbrain.utils.distributed import run_on_main
    from speechbrain.utils.epoch_loop import EpochCounter
    from speechbrain.utils.train_logger import FileTrainLogger
except (ImportError, OSError) as error:
    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.user_corpus import (
    load_audio,
    prepare_user_corpus,
)
from speechbrain_probe.devices import run_device
from speechbrain_probe.evaluation.study import ModelSpec
from speechbrain_probe.extras import extras_for_hparams, require_extra
from speechbrain_probe.frozen.load import load_asr
from speechbrain_probe.probe.training import dataio_prepare, train_probes
from speechbrain_probe.study_recipe import chosen_verifiers, study_and_report

logger = logging.getLogger(__name__)


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


def train_model_probes(name, asr, layers, hparams, run_opts, train_data, valid_data):
    """Train the probes of one model (resumable) in ``probes/<name>``;
    returns its save folder."""
    folder = Path(hparams["output_folder"]) / "probes" / name
    counter = EpochCounter(limit=hparams["number_of_epochs"])
    run = dict(
        hparams,
        epoch_counter=counter,
        checkpointer=Checkpointer(folder / "save", recoverables={"counter": counter}),
        train_logger=FileTrainLogger(folder / "train_log.txt"),
        noisy_training=bool(hparams["train_noise_csv"]),
        noise_csv=Path(hparams["data_folder"]) / "noise_train.csv",
        cache_folder=None,
        prefetch=False,
        num_workers=0,
    )
    train_probes(asr, layers, run, run_opts, train_data, valid_data, folder, model=name)
    return folder / "save"


def main(argv=None) -> int:
    """``probe_model.py hparams/probe_model.yaml [--key=value ...]``."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    # what the settings need beyond the core, before anything is written
    require_extra(*extras_for_hparams(hparams_file, overrides))
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    device = run_device(run_opts)
    # 1. the models and their layers, then every manifest row: errors (a missing
    # extra included) come before anything is written
    loaded = load_and_check(models_to_probe(hparams), hparams, device)
    sb.create_experiment_directory(hparams["output_folder"], hparams_file, overrides)
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
    data_folder = Path(hparams["data_folder"])
    max_seconds = hparams["max_train_seconds"]
    train_data, valid_data = dataio_prepare(
        hparams,
        {"train": data_folder / "train.csv", "valid": data_folder / "valid.csv"},
        # any rate and channel count as 16 kHz mono; a long file gives one
        # fixed piece of max_train_seconds
        read=lambda utt_id, wav: torch.from_numpy(
            load_audio(wav, 16000, max_seconds, utt_id)
        ),
    )
    specs = []
    for name, (asr, layers) in loaded.items():
        save = train_model_probes(
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
    study = dict(
        hparams,
        output_folder=hparams["study_folder"],
        conditions=prepared["conditions"],
        seed=hparams["study_seed"],
        negatives_per_positive=1,  # balanced trials
    )
    asrs = {name: asr for name, (asr, _) in loaded.items()}
    verifiers = chosen_verifiers(hparams)
    study_and_report(
        study, run_opts, specs, hparams["data_folder"], verifiers, asrs=asrs
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
