"""The stages the probe recipes share, each from the recipe's hparams.

``recipes/<Dataset>/Probe/Highway/train_probe.py`` and
``recipes/AnyCorpus/Probe/Highway/probe_model.py`` load a frozen ASR
(:func:`load_frozen_asr`, :func:`probe_layers`), read their speech
(:func:`dataio_prepare`) and train the probes of one ASR in one pass
(:func:`train_probes`); where the data comes from is their own.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.distributed import if_main_process

from speechbrain_probe.frozen.load import load_asr

from .brain import HiddenStateCache, ProbeBrain
from .model import build_probes
from .noise_mixer import NoiseMixer
from .state_store import StateStore
from .target import resolve_target_mel
from .valid_l1 import write_valid_l1

__all__ = [
    "dataio_prepare",
    "load_frozen_asr",
    "probe_layers",
    "state_store_for",
    "train_probes",
]

logger = logging.getLogger(__name__)


def dataio_prepare(hparams, csv_files: dict, read=None, replacements=None, hint=""):
    """Train and valid ``DynamicItemDataset``s of ``(id, sig)`` from the CSVs.

    Utterances are sorted by duration; ``train_utts`` / ``valid_utts`` of the
    hparams keep the first N of a shuffle seeded by ``seed`` (so a subset
    still sees all speakers).

    Arguments
    ---------
    hparams : dict
        With ``train_utts``, ``valid_utts`` (null: all) and ``seed``.
    csv_files : dict
        ``{"train": csv, "valid": csv}``.
    read : callable, optional
        ``read(utt_id, wav) -> signal`` (default: SpeechBrain's ``read_audio``).
    replacements : dict, optional
        ``$name`` -> text in the CSVs' columns.
    hint : str
        What to do when a CSV does not exist (ends the error message).

    Returns
    -------
    train, valid : DynamicItemDataset

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> rows = "".join(f"u{i},{i + 1}.0,x{i}.wav\\n" for i in range(4))
    >>> _ = (tmp / "a.csv").write_text("ID,duration,wav\\n" + rows)
    >>> hparams = {"train_utts": 2, "valid_utts": None, "seed": 0}
    >>> files = {"train": tmp / "a.csv", "valid": tmp / "a.csv"}
    >>> train, valid = dataio_prepare(hparams, files, read=lambda i, w: w)
    >>> len(train), [item["sig"] for item in valid]
    (2, ['x0.wav', 'x1.wav', 'x2.wav', 'x3.wav'])
    """
    limits = {"train": hparams["train_utts"], "valid": hparams["valid_utts"]}
    datasets = {}
    for split, csv_path in csv_files.items():
        if not Path(csv_path).exists():
            raise FileNotFoundError(f"{split}_csv {csv_path} does not exist; {hint}")
        data = sb.dataio.dataset.DynamicItemDataset.from_csv(
            str(csv_path), replacements=replacements or {}
        )
        ids, limit = list(data.data_ids), limits[split]
        if limit and limit < len(ids):
            gen = torch.Generator().manual_seed(int(hparams["seed"]))
            keep = {
                ids[i] for i in torch.randperm(len(ids), generator=gen)[:limit].tolist()
            }
            data = data.filtered_sorted(key_test={"id": lambda i, keep=keep: i in keep})
        datasets[split] = data.filtered_sorted(sort_key="duration")
    read = read or (lambda _utt_id, wav: sb.dataio.dataio.read_audio(wav))

    @sb.utils.data_pipeline.takes("id", "wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(utt_id, wav):
        return read(utt_id, wav)

    sb.dataio.dataset.add_dynamic_item(list(datasets.values()), audio_pipeline)
    sb.dataio.dataset.set_output_keys(list(datasets.values()), ["id", "sig"])
    return datasets["train"], datasets["valid"]


def load_frozen_asr(hparams, device, asr_recipe: str, data_args: str = ""):
    """The ASR at ``asr_source``, with the command of ``asr_recipe`` (and its
    ``data_args``) that makes it when it is missing."""
    try:
        return load_asr(hparams["asr_source"], device=device)
    except FileNotFoundError as err:
        raise FileNotFoundError(
            f"{err}\nNo ASR at asr_source={hparams['asr_source']}. Train it first, "
            f"from {asr_recipe}: python train_asr.py "
            f"hparams/{hparams['arch']}.yaml --training={hparams['training']} "
            f"{data_args}(or point --asr_folder / --asr_source at an exported ASR, "
            "a Hugging Face model directory or a SpeechBrain hub id)"
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


def state_store_for(hparams, asr, layers) -> StateStore | None:
    """The :class:`~speechbrain_probe.probe.state_store.StateStore` of
    ``reuse_states`` (None when it is off or absent from the hparams): in
    ``states_folder``, ``states_dtype``, keyed by the ASR's weights, the
    layers, the target mel and, with ``noisy_training``, the noise mixer's
    settings and noise list.

    Example
    -------
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> asr = ModuleASR(torch.nn.Conv1d(1, 4, 400, stride=200), {"c": ""}, takes_lengths=False)
    >>> tmp = getfixture("tmp_path")
    >>> hp = {"reuse_states": True, "states_folder": tmp, "noisy_training": False,
    ...       "target_mel": "paper", "seed": 0}
    >>> store = state_store_for(hp, asr, ["c"])
    >>> store.dtype, store.folder.parent.name == asr.fingerprint[:16]
    (torch.float16, True)
    >>> state_store_for({"reuse_states": False}, asr, ["c"]) is None
    True
    """
    if not hparams.get("reuse_states", False):
        return None
    key = {"target_mel": resolve_target_mel(hparams["target_mel"], asr).to_dict()}
    if hparams["noisy_training"]:
        noise_list = Path(hparams["noise_csv"]).read_bytes()
        key["noise"] = {
            "csv": hashlib.sha256(noise_list).hexdigest(),
            "snr_ranges": hparams["noise_snr_ranges"],
            "prob": hparams["noise_prob"],
            "seed": hparams["seed"],
        }
    return StateStore(
        hparams["states_folder"],
        asr.fingerprint,
        layers,
        key=key,
        dtype=hparams.get("states_dtype", "float16"),
    )


def train_probes(
    asr, layers, hparams, run_opts, train_data, valid_data, folder, model=None
):
    """Train the probes of one ASR's ``layers`` in one pass (resumable), keep
    each layer's best, and write their ``valid_l1.csv`` into ``folder``.

    Arguments
    ---------
    asr : FrozenASR
        The frozen model whose layers are probed.
    layers : list of str
        The layers, one probe each.
    hparams : dict
        The run's ``epoch_counter``, ``checkpointer`` (the probes join it as
        ``probes``) and ``train_logger``, the probes' and
        :class:`~speechbrain_probe.probe.brain.ProbeBrain`'s settings, and
        the noise mixed into training input when ``noisy_training``; with
        ``reuse_states``, each training utterance's hidden states are stored
        in the first epoch and read in later ones (:func:`state_store_for`;
        removed once training is over unless ``keep_states``).
    run_opts : dict
        SpeechBrain's run options.
    train_data, valid_data : DynamicItemDataset
        From :func:`dataio_prepare`.
    folder : path
        Where ``valid_l1.csv`` goes.
    model : str, optional
        The ASR's name in ``valid_l1.csv`` and in the printed lines.

    Returns
    -------
    dict
        Layer -> validation L1 of its kept probe.
    """
    loader = {
        "batch_size": hparams["batch_size"],
        "num_workers": hparams["num_workers"],
    }
    probes = build_probes(
        asr,
        layers,
        n_highway=hparams["n_highway"],
        gate_bias=hparams["gate_bias"],
        target_mel=hparams["target_mel"],
    )
    hparams["checkpointer"].add_recoverable("probes", probes)
    add_noise = cache = None
    if hparams["noisy_training"]:
        add_noise = NoiseMixer(
            hparams["noise_csv"],
            snr_ranges=hparams["noise_snr_ranges"],
            prob=hparams["noise_prob"],
            seed=hparams["seed"],
        )
    if hparams["cache_folder"]:
        cache = HiddenStateCache(hparams["cache_folder"], asr.fingerprint)
    store = state_store_for(hparams, asr, layers)
    if store is not None:
        store.expect(len(train_data))
    brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
        add_noise=add_noise,
        cache=cache,
        state_store=store,
        prefetch=hparams["prefetch"],
        train_logger=hparams["train_logger"],
        target_mel=hparams["target_mel"],
        early_stopping_patience=hparams["early_stopping_patience"],
        early_stopping_min_delta=hparams["early_stopping_min_delta"],
        valid_every_steps=hparams["valid_every_steps"],
    )
    brain.fit(
        hparams["epoch_counter"],
        train_data,
        valid_data,
        train_loader_kwargs=loader,
        valid_loader_kwargs=loader,
    )
    brain.evaluate(valid_data, min_key="loss", test_loader_kwargs=loader)
    losses, best = brain.layer_losses(), brain.best_validation()
    if if_main_process():
        if store is not None and not hparams.get("keep_states", False):
            store.clear()
        write_valid_l1(
            Path(folder) / "valid_l1.csv",
            asr,
            losses,
            len(valid_data),
            model=model,
            best=best,
            target_mel=brain.target_mel,
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
        print(f"valid_l1 {model + ' ' if model else ''}{name} {value:.5f}")
    return losses
