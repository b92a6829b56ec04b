"""The shared body of ``train_probe.py``: hparams, data, training, results.

Layer files are short: ``hparams/vgg_lstm/blstm3.yaml`` holds
``extends: ../probe_base.yaml`` plus the keys it changes (``arch``,
``layers``); :func:`load_probe_hparams` loads the base file with those keys and
the command-line overrides applied, so every setting can still be overridden
from the command line (``--number_of_epochs=5``).
"""

from __future__ import annotations

import csv
import logging
import re
import sys
from pathlib import Path

import speechbrain as sb
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml

from speechbrain_probe.data.manifest import write_csv
from speechbrain_probe.data.noise import mix_at_snr
from speechbrain_probe.frozen import load_asr
from speechbrain_probe.probe.brain import HiddenStateCache, ProbeBrain, build_probes

__all__ = [
    "load_probe_hparams",
    "dataio_prepare",
    "NoiseMixer",
    "resolve_layers",
    "train_probes",
    "main",
]

logger = logging.getLogger(__name__)


def load_probe_hparams(path, overrides=None):
    """Load a probe hparams file, following one ``extends:`` level.

    Arguments
    ---------
    path : str or path
        A full HyperPyYAML file, or a layer file with ``extends: <base yaml>``.
    overrides : dict or str, optional
        Command-line overrides (a YAML string as ``sb.parse_arguments`` gives).

    Returns
    -------
    hparams : dict
        The loaded hyperparameters.
    base_path : Path
        The file that was actually loaded.
    merged : dict
        All overrides applied to it (layer keys, then command line).

    Example
    -------
    >>> d = getfixture("tmp_path")
    >>> _ = (d / "base.yaml").write_text("layers: [a]\\nlr: 0.1\\ntwice: !ref <lr> * 2\\n")
    >>> _ = (d / "b.yaml").write_text("extends: base.yaml\\nlayers: [b]\\n")
    >>> hp, base, merged = load_probe_hparams(d / "b.yaml", "lr: 1.0")
    >>> hp["layers"], hp["twice"], base.name
    (['b'], 2.0, 'base.yaml')
    """
    path = Path(path)
    if isinstance(overrides, str):
        overrides = yaml.safe_load(overrides) or {}
    overrides = dict(overrides or {})
    text = path.read_text(encoding="utf-8")
    # a layer file is plain YAML with a top-level extends: key; a full file
    # (custom !tags, maybe "extends:" in a comment) goes to HyperPyYAML as is
    extends = re.search(r"^extends\s*:", text, flags=re.MULTILINE)
    first = yaml.safe_load(text) if extends else None
    if isinstance(first, dict) and "extends" in first:
        base = (path.parent / first.pop("extends")).resolve()
        merged = {**first, **overrides}
    else:
        base, merged = path, overrides
    with open(base, encoding="utf-8") as fin:
        hparams = load_hyperpyyaml(fin, merged, overrides_must_match=False)
    return hparams, base, merged


def dataio_prepare(hparams):
    """Train and valid ``DynamicItemDataset``s of ``(id, sig)`` from the CSVs.

    Utterances are sorted by duration; ``train_utts`` / ``valid_utts`` keep the
    first N of a seeded shuffle (so a short run still sees all speakers).
    """
    datasets = {}
    for split in ("train", "valid"):
        csv_path = Path(hparams[f"{split}_csv"])
        if not csv_path.exists():
            raise FileNotFoundError(
                f"{split}_csv {csv_path} does not exist; build the corpus first "
                "(speechbrain_probe.data.synthetic.build_corpus) or set data_folder"
            )
        data = sb.dataio.dataset.DynamicItemDataset.from_csv(
            str(csv_path), replacements={"data_root": str(hparams["data_folder"])}
        )
        limit = hparams.get(f"{split}_utts")
        ids = list(data.data_ids)
        if limit and limit < len(ids):
            gen = torch.Generator().manual_seed(int(hparams.get("seed", 0)))
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


class NoiseMixer:
    """Mix noise into a random share of the utterances of a batch.

    Noise files are read once into memory. Each chosen utterance gets a random
    segment of a random noise file at a random SNR from its category's range
    (the paper's Kaldi-style ranges by default: noise 0-15 dB, music 5-15 dB,
    babble/speech 13-20 dB), measured over the utterance's valid samples.

    Arguments
    ---------
    csv_file : str
        Noise manifest ``ID,duration,wav[,category]``.
    snr_ranges : dict, optional
        ``category -> [low, high]`` in dB; ``default`` covers other categories.
    prob : float
        Share of utterances that get noise (the rest stay clean).
    seed : int
        Seed of the mixer's own random generator.

    Example
    -------
    >>> import numpy as np
    >>> import soundfile as sf
    >>> d = getfixture("tmp_path")
    >>> sf.write(d / "n.wav", np.random.default_rng(0).normal(size=16000) * 0.1, 16000)
    >>> _ = (d / "noise.csv").write_text(f"ID,duration,wav,category\\nn,1.0,{d}/n.wav,noise\\n")
    >>> mixer = NoiseMixer(d / "noise.csv", prob=1.0)
    >>> clean = torch.sin(torch.arange(8000) / 5.0)[None].repeat(2, 1)
    >>> noisy = mixer(clean, torch.tensor([1.0, 0.5]))
    >>> snr = 10 * torch.log10(clean[0].pow(2).mean() / (noisy[0] - clean[0]).pow(2).mean())
    >>> 0.0 <= float(snr) <= 15.0, torch.equal(noisy[1, 4000:], clean[1, 4000:])
    (True, True)
    """

    DEFAULT_SNR = {
        "noise": [0, 15],
        "music": [5, 15],
        "speech": [13, 20],
        "default": [0, 20],
    }

    def __init__(self, csv_file, snr_ranges=None, prob=0.5, seed=0):
        import soundfile as sf

        if not Path(csv_file).exists():
            raise FileNotFoundError(
                f"noise_csv {csv_file} does not exist; build the corpus's noise bank or "
                "set noisy_training: False"
            )
        self.snr = dict(self.DEFAULT_SNR if snr_ranges is None else snr_ranges)
        self.prob = prob
        self.gen = torch.Generator().manual_seed(seed)
        self.noises, self.categories = [], []
        with open(csv_file, newline="", encoding="utf-8") as fin:
            for row in csv.DictReader(fin):
                audio, sr = sf.read(row["wav"], dtype="float32", always_2d=True)
                if sr != 16000:
                    raise ValueError(f"noise {row['wav']} is {sr} Hz; 16 kHz expected")
                self.noises.append(torch.from_numpy(audio.mean(axis=1)))
                self.categories.append(row.get("category") or "default")
        if not self.noises:
            raise ValueError(f"noise_csv {csv_file} lists no noise files")

    def _segment(self, index: int, length: int) -> torch.Tensor:
        noise = self.noises[index]
        if len(noise) < length:
            noise = noise.repeat(length // len(noise) + 1)
        start = int(torch.randint(0, len(noise) - length + 1, (1,), generator=self.gen))
        return noise[start : start + length]

    def __call__(self, wavs, lens):
        """Noisy copy of ``wavs`` for a random share ``prob`` of the batch."""
        out = wavs.clone()
        total = wavs.shape[1]
        for i in range(wavs.shape[0]):
            if float(torch.rand(1, generator=self.gen)) >= self.prob:
                continue
            n = max(1, int(round(float(lens[i]) * total)))
            k = int(torch.randint(0, len(self.noises), (1,), generator=self.gen))
            low, high = self.snr.get(
                self.categories[k], self.snr.get("default", [0, 20])
            )
            snr = low + (high - low) * float(torch.rand(1, generator=self.gen))
            noise = self._segment(k, n).to(wavs.device, wavs.dtype)
            out[i, :n] = mix_at_snr(wavs[i, :n], noise, snr)
        return out


def resolve_layers(hparams, asr) -> list[str]:
    """``layers`` of the hparams: a list, ``"all"`` or ``"paper"`` (by ``arch``)."""
    layers = hparams["layers"]
    if layers == "paper":
        table = hparams.get("paper_layers") or {}
        arch = hparams.get("arch")
        if arch not in table:
            raise KeyError(
                f"layers: paper needs paper_layers for arch {arch!r}; known: {sorted(table)}"
            )
        layers = list(table[arch])
    return asr.check_layers(layers)


def train_probes(hparams, run_opts=None, asr=None):
    """Train the probes of ``hparams['layers']`` and write ``valid_l1.csv``.

    Arguments
    ---------
    hparams : dict
        Loaded probe hyperparameters (see ``hparams/probe_base.yaml``).
    run_opts : dict, optional
        SpeechBrain run options (device, precision, ...).
    asr : FrozenASR, optional
        Already loaded ASR (default: ``load_asr(hparams['asr_source'])``).

    Returns
    -------
    dict
        Layer -> validation L1 of the best checkpoint.
    """
    run_opts = dict(run_opts or {})
    device = run_opts.get("device", "cpu")
    if asr is None:
        asr = load_asr(hparams["asr_source"], device=device)
    layers = resolve_layers(hparams, asr)
    probes = build_probes(
        asr, layers, n_highway=hparams["n_highway"], gate_bias=hparams["gate_bias"]
    )
    checkpointer = hparams["checkpointer"]
    checkpointer.add_recoverable("probes", probes)

    add_noise = None
    if hparams.get("noisy_training"):
        add_noise = NoiseMixer(
            hparams["noise_csv"],
            snr_ranges=hparams.get("noise_snr_ranges"),
            prob=hparams["noise_prob"],
            seed=hparams.get("seed", 0),
        )
    cache = None
    if hparams.get("cache_folder"):
        cache = HiddenStateCache(hparams["cache_folder"], asr.fingerprint)

    train_data, valid_data = dataio_prepare(hparams)
    brain = ProbeBrain(
        asr,
        layers,
        modules=probes,
        add_noise=add_noise,
        cache=cache,
        prefetch=bool(hparams.get("prefetch", False)),
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=checkpointer,
    )
    loader = {
        "batch_size": hparams["batch_size"],
        "num_workers": hparams["num_workers"],
    }
    brain.fit(
        hparams["epoch_counter"],
        train_data,
        valid_data,
        train_loader_kwargs=loader,
        valid_loader_kwargs=loader,
    )
    brain.evaluate(valid_data, min_key="loss", test_loader_kwargs=loader)
    losses = brain.layer_losses()
    if sb.utils.distributed.if_main_process():
        rows = [
            {
                "asr_source": asr.source,
                "layer": name,
                "path": asr.layers[name],
                "dim": asr.geometry(name).dim,
                "downsample": asr.geometry(name).downsample,
                "valid_l1": f"{value:.5f}",
                "n_utts": len(valid_data),
            }
            for name, value in losses.items()
        ]
        write_csv(Path(hparams["output_folder"]) / "valid_l1.csv", rows, list(rows[0]))
    return losses


def main(argv=None):
    """``train_probe.py hparams/<layer>.yaml [--overrides]``."""
    argv = sys.argv[1:] if argv is None else argv
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams, base, merged = load_probe_hparams(hparams_file, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=str(base),
        overrides=merged,
    )
    losses = train_probes(hparams, run_opts)
    for name, value in losses.items():
        logger.info("valid L1 %s: %.5f", name, value)
        print(f"valid_l1 {name} {value:.5f}")
    return losses
