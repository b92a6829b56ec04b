#!/usr/bin/env python3
"""Recipe: probes that reconstruct speech from the hidden layers of a frozen
LibriSpeech ASR.

A non-contextual Highway probe per layer (Li, Yuan, Lee, ICASSP 2020) learns
to map the layer's frames back to the input's mel spectrogram; all probes of
one ASR train in one pass (one frozen ASR forward per batch feeds them all).
The ASR is a model that ``../../ASR/CTC`` exported (the default,
``<asr_folder>/<arch>_<training>/export``), a Hugging Face model directory or
a SpeechBrain hub id (``--asr_source``). Training data: a seeded subset of
train-clean-100, half of it mixed with MUSAN's training noises.

Run from this folder, once the ASR it probes exists::

    python train_probe.py hparams/all_layers.yaml \
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan
    python train_probe.py hparams/all_layers.yaml --arch=blstm --training=robust \
        --librispeech_folder=/data/LibriSpeech --musan_folder=/data/musan

Preparation (the manifests of train-clean-100, dev-clean and MUSAN, with
babble) runs once on the main process and is reused; a run that is stopped
resumes from its last checkpoint when the same command is run again. Each
probe stops early on its own validation L1 (``early_stopping_patience``) and
keeps its best state; ``target_mel`` chooses the mel it reconstructs. Outputs
in ``output_folder``: ``train_log.txt``, the probes' checkpoints in ``save/``
(what ``evaluate.py`` loads) and ``valid_l1.csv`` (per-layer validation L1 of
the kept probes, with their best epoch and step and whether they stopped
early).
"""

import logging
import sys
from pathlib import Path

try:  # speechbrain imports torchaudio, which loads only with its own torch
    import speechbrain as sb
    import torch
    from hyperpyyaml import load_hyperpyyaml
    from speechbrain.utils.distributed import if_main_process, run_on_main
except (ImportError, OSError) as error:
    from speechbrain_probe.environment import import_failure

    raise SystemExit(import_failure(error)) from None

from speechbrain_probe.data.librispeech_study import prepare_probe_data
from speechbrain_probe.devices import run_device
from speechbrain_probe.extras import extras_for_hparams, require_extra
from speechbrain_probe.frozen.load import load_asr
from speechbrain_probe.probe.brain import HiddenStateCache, ProbeBrain
from speechbrain_probe.probe.model import build_probes
from speechbrain_probe.probe.noise_mixer import NoiseMixer
from speechbrain_probe.probe.valid_l1 import write_valid_l1

logger = logging.getLogger(__name__)


def dataio_prepare(hparams):
    """Train and valid ``DynamicItemDataset``s of ``(id, sig)`` from the CSVs.

    Utterances are sorted by duration; ``train_utts`` / ``valid_utts`` keep the
    first N of a seeded shuffle (so a subset still sees all speakers).
    """
    datasets = {}
    splits = {
        "train": (hparams["train_csv"], hparams["train_utts"]),
        "valid": (hparams["valid_csv"], hparams["valid_utts"]),
    }
    for split, (csv_path, limit) in splits.items():
        csv_path = Path(csv_path)
        if not csv_path.exists():
            raise FileNotFoundError(
                f"{split}_csv {csv_path} does not exist; run with skip_prep: False "
                "(and --librispeech_folder, --musan_folder) to prepare it"
            )
        data = sb.dataio.dataset.DynamicItemDataset.from_csv(str(csv_path))
        ids = list(data.data_ids)
        if limit and limit < len(ids):
            gen = torch.Generator().manual_seed(int(hparams["seed"]))
            keep = {
                ids[i] for i in torch.randperm(len(ids), generator=gen)[:limit].tolist()
            }
            data = data.filtered_sorted(key_test={"id": lambda i, keep=keep: i in keep})
        datasets[split] = data.filtered_sorted(sort_key="duration")

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return sb.dataio.dataio.read_audio(wav)

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()), ["id", "sig"])
    return datasets["train"], datasets["valid"]


def load_frozen_asr(hparams, device):
    """The ASR to probe, with the command that makes it when it is missing."""
    try:
        return load_asr(hparams["asr_source"], device=device)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}\nNo ASR at asr_source={hparams['asr_source']}. Train it first, "
            f"from recipes/LibriSpeech/ASR/CTC: python train_asr.py "
            f"hparams/{hparams['arch']}.yaml --training={hparams['training']} "
            "--librispeech_folder=... --musan_folder=... (or point --asr_folder / --asr_source at an exported ASR, a Hugging "
            "Face model directory or a SpeechBrain hub id)"
        ) from None


def probe_layers(hparams, asr):
    """``layers`` of the hparams: a list, ``"all"`` or ``"paper"`` (of ``arch``)."""
    layers = hparams["layers"]
    if layers == "paper":
        table = hparams["paper_layers"]
        if hparams["arch"] not in table:
            raise KeyError(
                f"layers: paper needs paper_layers for arch {hparams['arch']!r}; "
                f"known: {sorted(table)}"
            )
        layers = list(table[hparams["arch"]])
    return asr.check_layers(layers)


def main(argv=None):
    """``train_probe.py hparams/<file>.yaml [--key=value ...]``; returns the
    validation L1 of each layer's kept (best) probe."""
    hparams_file, run_opts, overrides = sb.parse_arguments(
        sys.argv[1:] if argv is None else argv
    )
    # what the settings need beyond the core, before anything is written
    require_extra(*extras_for_hparams(hparams_file, overrides))
    sb.utils.distributed.ddp_init_group(run_opts)
    with open(hparams_file, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    if hparams["num_threads"]:
        torch.set_num_threads(int(hparams["num_threads"]))
    # the ASR first: a missing one is reported before minutes of preparation
    asr = load_frozen_asr(hparams, run_device(run_opts))
    # the manifests: prepared once, reused afterwards
    if not hparams["skip_prep"]:
        run_on_main(
            prepare_probe_data,
            kwargs=dict(
                librispeech_folder=hparams["librispeech_folder"],
                musan_folder=hparams["musan_folder"],
                save_folder=hparams["csv_folder"],
                train_split=hparams["train_split"],
                valid_split=hparams["valid_split"],
                num_babble=hparams["num_babble"],
                musan_seed=hparams["musan_seed"],
            ),
        )

    layers = probe_layers(hparams, asr)
    probes = build_probes(
        asr,
        layers,
        n_highway=hparams["n_highway"],
        gate_bias=hparams["gate_bias"],
        target_mel=hparams["target_mel"],
    )
    hparams["checkpointer"].add_recoverable("probes", probes)
    add_noise = None
    if hparams["noisy_training"]:
        add_noise = NoiseMixer(
            hparams["noise_csv"],
            snr_ranges=hparams["noise_snr_ranges"],
            prob=hparams["noise_prob"],
            seed=hparams["seed"],
        )
    cache = None
    if hparams["cache_folder"]:
        cache = HiddenStateCache(hparams["cache_folder"], asr.fingerprint)

    train_data, valid_data = dataio_prepare(hparams)
    probe_brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        add_noise=add_noise,
        cache=cache,
        prefetch=hparams["prefetch"],
        train_logger=hparams["train_logger"],
        target_mel=hparams["target_mel"],
        early_stopping_patience=hparams["early_stopping_patience"],
        early_stopping_min_delta=hparams["early_stopping_min_delta"],
        valid_every_steps=hparams["valid_every_steps"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    loader = {
        "batch_size": hparams["batch_size"],
        "num_workers": hparams["num_workers"],
    }
    probe_brain.fit(
        hparams["epoch_counter"],
        train_data,
        valid_data,
        train_loader_kwargs=loader,
        valid_loader_kwargs=loader,
    )
    probe_brain.evaluate(valid_data, min_key="loss", test_loader_kwargs=loader)
    losses = probe_brain.layer_losses()
    best = probe_brain.best_validation()
    if if_main_process():
        write_valid_l1(
            Path(hparams["output_folder"]) / "valid_l1.csv",
            asr,
            losses,
            len(valid_data),
            best=best,
            target_mel=probe_brain.target_mel,
        )
    for name, value in losses.items():
        kept = best[name]
        note = ", stopped early" if kept["stopped_early"] else ""
        logger.info(
            "valid L1 %s: %.5f (best at epoch %s%s)",
            name,
            value,
            kept["best_epoch"],
            note,
        )
        print(f"valid_l1 {name} {value:.5f}")
    return losses


if __name__ == "__main__":
    main()
