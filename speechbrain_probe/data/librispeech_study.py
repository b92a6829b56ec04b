"""LibriSpeech + MUSAN data of the probe study: the probes' training data and
the study's test conditions.

Two steps of the paper's chain on LibriSpeech, each a thin composition of
:func:`~speechbrain_probe.data.librispeech.prepare_librispeech`,
:func:`~speechbrain_probe.data.musan.prepare_musan` and
:func:`~speechbrain_probe.data.noisy.build_noisy_test_sets`:

- :func:`prepare_probe_data`: manifests of the probes' training and
  validation splits (train-clean-100, dev-clean) and of MUSAN's *training*
  noises (music, noise, babble), which noisy probe training mixes in;
- :func:`prepare_test_conditions`: test-clean and its copies mixed with
  MUSAN's *held-out* noises at exact SNRs (20, 10, 0 dB), each noisy
  utterance stored with its exact clean reference, under the manifest names
  the study reads (``test.csv``, ``test_snr20.csv``, ...; see
  :func:`speechbrain_probe.evaluation.selection.condition_file`).

With the same seeds and ``num_babble`` as the LibriSpeech ASR recipe, the
MUSAN split and the noisy mixtures are identical to those the ASR models were
tested on (everything is deterministic for a seed). Both steps reuse what
exists and hold a lock on ``save_folder`` while they write, so several
recipe processes may share one folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from .librispeech import prepare_librispeech
from .locks import folder_lock
from .manifest import read_manifest, write_manifest
from .musan import prepare_musan
from .noisy import build_noisy_test_sets, snr_condition

__all__ = ["prepare_probe_data", "prepare_test_conditions"]


def _musan(musan_folder, save_folder, seed, num_babble, progress) -> dict:
    """MUSAN's manifests (and babble), the same for both steps and, with the
    ASR recipe's seed and ``num_babble``, the same as the ASR models had."""
    return prepare_musan(
        musan_folder, save_folder, seed=seed, num_babble=num_babble, progress=progress
    )


def prepare_probe_data(
    librispeech_folder: str | os.PathLike,
    musan_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    train_split: str = "train-clean-100",
    valid_split: str = "dev-clean",
    num_babble: int = 200,
    musan_seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Manifests of the probes' training and validation data and training noise.

    Arguments
    ---------
    librispeech_folder : path
        The extracted ``LibriSpeech/`` folder (holding e.g. ``train-clean-100/``).
    musan_folder : path
        The extracted ``musan/`` folder (or its parent).
    save_folder : path
        Where the manifests (and MUSAN babble files) go; existing ones are reused.
    train_split, valid_split : str
        LibriSpeech splits of the probes' training and validation data.
    num_babble : int
        Babble files (3-7 talkers each) per MUSAN split; 0 keeps MUSAN's
        single-talker speech files as the ``speech`` category.
    musan_seed : int
        Seed of MUSAN's train/test split of files and of the babble.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        ``train``, ``valid`` (utterance manifests ``ID,duration,wav,spk_id,wrd``)
        and ``noise_train`` (``ID,duration,wav,category``) -> path.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> tmp = getfixture("tmp_path")
    >>> for split, spk in (("train-clean-100", "19"), ("dev-clean", "84")):
    ...     chap = tmp / "LibriSpeech" / split / spk / "1"
    ...     chap.mkdir(parents=True)
    ...     sf.write(chap / f"{spk}-1-0000.flac", np.zeros(1600), 16000)
    ...     _ = (chap / f"{spk}-1.trans.txt").write_text(f"{spk}-1-0000 HELLO\\n")
    >>> for cat in ("music", "noise", "speech"):
    ...     (tmp / "musan" / cat / "src").mkdir(parents=True)
    ...     for i in range(10):
    ...         sf.write(tmp / "musan" / cat / "src" / f"{i}.wav", np.full(1600, 0.1), 16000)
    >>> out = prepare_probe_data(tmp / "LibriSpeech", tmp / "musan", tmp / "csv",
    ...                          num_babble=1, progress=False)
    >>> sorted(out), [r["spk_id"] for r in read_manifest(out["train"])]
    (['noise_train', 'train', 'valid'], ['19'])
    >>> sorted({r["category"] for r in read_manifest(out["noise_train"])})
    ['music', 'noise', 'speech']
    """
    save_folder = Path(save_folder)
    with folder_lock(save_folder, "the LibriSpeech and MUSAN manifests"):
        splits = prepare_librispeech(
            librispeech_folder,
            save_folder,
            splits=[train_split, valid_split],
            progress=progress,
        )
        noises = _musan(musan_folder, save_folder, musan_seed, num_babble, progress)
    return {
        "train": splits[train_split],
        "valid": splits[valid_split],
        "noise_train": noises["noise_train"],
    }


def prepare_test_conditions(
    librispeech_folder: str | os.PathLike,
    musan_folder: str | os.PathLike,
    save_folder: str | os.PathLike,
    test_split: str = "test-clean",
    snrs=(20, 10, 0),
    num_babble: int = 200,
    musan_seed: int = 0,
    noise_seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """The study's test conditions: ``test_split`` clean and mixed with MUSAN.

    Writes ``<save_folder>/<test_split>.csv``, MUSAN's manifests, the noisy
    copies (``noisy/snr<N>/{mix,clean}/<ID>.wav``, the clean reference at the
    mixture's scale) with ``test_snr<N>.csv``, and ``test.csv``: the clean
    condition under the name the study reads. Noises come from MUSAN's
    held-out files (``noise_test.csv``), one noise and offset per utterance
    for every SNR.

    Arguments
    ---------
    librispeech_folder : path
        The extracted ``LibriSpeech/`` folder.
    musan_folder : path
        The extracted ``musan/`` folder (or its parent).
    save_folder : path
        Where everything goes; existing files are reused.
    test_split : str
        The LibriSpeech test split.
    snrs : sequence of float
        SNR levels in dB.
    num_babble, musan_seed : int
        As for :func:`prepare_probe_data` (and the ASR recipe).
    noise_seed : int
        Seed of the choice of noise and offset per utterance.
    progress : bool
        Show tqdm bars.

    Returns
    -------
    dict
        Condition (``clean``, ``snr20``, ...) -> manifest path.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> from speechbrain_probe.data.noise import measure_snr
    >>> from speechbrain_probe.data.audio import read_checked
    >>> tmp = getfixture("tmp_path")
    >>> chap = tmp / "LibriSpeech" / "test-clean" / "61" / "1"
    >>> chap.mkdir(parents=True)
    >>> rng = np.random.default_rng(0)
    >>> sf.write(chap / "61-1-0000.flac", 0.1 * rng.standard_normal(8000), 16000)
    >>> _ = (chap / "61-1.trans.txt").write_text("61-1-0000 HELLO\\n")
    >>> for cat in ("music", "noise", "speech"):
    ...     (tmp / "musan" / cat / "src").mkdir(parents=True)
    ...     for i in range(3):
    ...         sf.write(tmp / "musan" / cat / "src" / f"{i}.wav",
    ...                  0.1 * rng.standard_normal(4000), 16000)
    >>> out = prepare_test_conditions(tmp / "LibriSpeech", tmp / "musan", tmp / "csv",
    ...                               snrs=(10,), num_babble=0, progress=False)
    >>> sorted(out), out["clean"].name
    (['clean', 'snr10'], 'test.csv')
    >>> row = read_manifest(out["snr10"])[0]
    >>> round(measure_snr(read_checked(row["clean_wav"]), read_checked(row["wav"])))
    10
    """
    save_folder = Path(save_folder)
    with folder_lock(save_folder, "the LibriSpeech and MUSAN manifests"):
        clean = prepare_librispeech(
            librispeech_folder, save_folder, splits=[test_split], progress=progress
        )[test_split]
        noises = _musan(musan_folder, save_folder, musan_seed, num_babble, progress)
        noisy = build_noisy_test_sets(
            clean,
            noises["noise_test"],
            save_folder,
            snrs=snrs,
            seed=noise_seed,
            progress=progress,
        )
        test = save_folder / "test.csv"
        if not test.is_file():
            write_manifest(test, read_manifest(clean))
    return {"clean": test, **{snr_condition(snr): path for snr, path in noisy.items()}}
