"""Speaker verifiers with one interface: embeddings and cosine scoring.

* :class:`GE2EVerifier`: the LSTM GE2E speaker encoder whose pretrained
  weights ship inside the ``resemblyzer`` wheel (offline, no download).
* :class:`ECAPAVerifier`: SpeechBrain's ECAPA-TDNN ``EncoderClassifier``
  from a local directory (e.g. the one ``recipes/Synthetic/SpeakerRec/ECAPA`` exports)
  or a hub id such as ``speechbrain/spkrec-ecapa-voxceleb``.

:func:`score_trials` scores a trial list and reports the trials it had to
drop because an utterance could not be embedded (NaN, silence, wrong rate).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from speechbrain.utils.data_utils import batch_pad_right

from speechbrain_probe.frozen.source import resolve_source
from speechbrain_probe.metrics.quality import Exclusion, check_waveform

__all__ = [
    "SpeakerVerifier",
    "GE2EVerifier",
    "ge2e_mel",
    "ECAPAVerifier",
    "build_verifier",
    "cosine_scores",
    "score_trials",
]


def cosine_scores(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two ``[N, D]`` embedding matrices.

    Example
    -------
    >>> cosine_scores(torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]]))
    tensor([0.7071])
    """
    return torch.nn.functional.cosine_similarity(a, b, dim=-1)


class SpeakerVerifier:
    """Base class: subclasses implement :meth:`_embed` for valid 16 kHz audio."""

    name = "verifier"
    sample_rate = 16000
    min_seconds = 0.3
    batch_size = 16

    def _embed(self, wavs: list[np.ndarray]) -> torch.Tensor:
        raise NotImplementedError

    def embed(self, wavs, utt_ids=None, sample_rate: int = 16000, batch_size=None):
        """L2-normalised embeddings of valid utterances.

        Arguments
        ---------
        wavs : list of 1-D arrays or tensors
        utt_ids : list of str, optional
            Names used in the exclusion record (default: positions).
        sample_rate : int
            Rate of ``wavs`` (must be the verifier's).
        batch_size : int, optional
            Utterances per forward (default: the verifier's ``batch_size``).

        Returns
        -------
        embeddings : dict
            ``utt_id -> tensor [D]`` for every utterance that could be embedded.
        exclusions : list of Exclusion
            The others, with the reason.
        """
        utt_ids = [str(u) for u in (utt_ids or range(len(wavs)))]
        if len(utt_ids) != len(wavs):
            raise ValueError(f"{len(utt_ids)} ids for {len(wavs)} waveforms")
        valid, exclusions = [], []
        for u, w in zip(utt_ids, wavs):
            w = np.asarray(
                w.detach().cpu() if torch.is_tensor(w) else w, dtype=np.float32
            )
            reason = check_waveform(
                w, sample_rate, self.sample_rate, self.min_seconds, what="utterance"
            )
            if reason:
                exclusions.append(Exclusion(u, f"eer_{self.name}", reason))
            else:
                valid.append((u, w))
        out = {}
        batch_size = batch_size or self.batch_size
        for start in range(0, len(valid), batch_size):
            chunk = valid[start : start + batch_size]
            emb = self._embed([w for _, w in chunk]).float().cpu()
            emb = torch.nn.functional.normalize(emb, dim=-1)
            for (u, _), e in zip(chunk, emb):
                out[u] = e
        return out, exclusions


@functools.cache
def _ge2e_mel_setup() -> tuple[int, int, np.ndarray, np.ndarray]:
    """FFT size, hop, periodic Hann window and ``[freq, mel]`` Slaney
    filterbank of resemblyzer's mel (its ``hparams``: 25 ms every 10 ms at
    16 kHz, 40 bands)."""
    import torchaudio
    from resemblyzer import hparams
    from scipy.signal import get_window

    rate = hparams.sampling_rate
    n_fft = int(rate * hparams.mel_window_length / 1000)
    hop = int(rate * hparams.mel_window_step / 1000)
    basis = torchaudio.functional.melscale_fbanks(
        n_fft // 2 + 1,
        0.0,
        rate / 2,
        hparams.mel_n_channels,
        rate,
        norm="slaney",
        mel_scale="slaney",
    )
    window = get_window("hann", n_fft, fftbins=True)
    return n_fft, hop, window, basis.numpy().astype(np.float32)


def ge2e_mel(wav: np.ndarray) -> np.ndarray:
    """The ``[frames, 40]`` mel spectrogram GE2E's encoder reads, as
    ``resemblyzer.audio.wav_to_mel_spectrogram`` computes it with librosa
    (centred frames with zero padding, power spectrum, Slaney mel bands),
    equal to it within 1e-5 relative, without librosa: importing librosa's
    utilities compiles its numba functions, about 20 s once per fresh
    install (benchmarks/bench_ge2e_mel.py).

    Example
    -------
    >>> ge2e_mel(np.zeros(16000, np.float32)).shape
    (101, 40)
    """
    n_fft, hop, window, basis = _ge2e_mel_setup()
    padded = np.pad(np.asarray(wav, np.float32), n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * window, axis=-1).astype(np.complex64)
    return (np.abs(spectrum) ** 2 @ basis).astype(np.float32)


class GE2EVerifier(SpeakerVerifier):
    """LSTM GE2E encoder (resemblyzer's shipped pretrained weights).

    Each utterance goes through resemblyzer's own preprocessing (volume
    normalisation, trimming of long silences) and is embedded as the mean
    of its 1.6 s partial embeddings, exactly as ``VoiceEncoder.embed_utterance``
    does; but the partials of a whole batch of utterances go through the LSTM
    in one forward (one utterance's handful of partials left the LSTM mostly
    idle: 3x slower on one CPU thread).

    Example
    -------
    >>> v = GE2EVerifier(device="cpu")
    >>> t = np.arange(16000) / 16000
    >>> emb, excl = v.embed([np.sin(2 * np.pi * 200 * t) * 0.1, np.zeros(16000)])
    >>> emb["0"].shape, excl[0].utt_id
    (torch.Size([256]), '1')
    """

    name = "ge2e"
    batch_size = 64  # utterances; every partial is 160 frames: no padding

    def __init__(self, device=None):
        from resemblyzer import VoiceEncoder

        self.device = torch.device(
            device or ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.encoder = VoiceEncoder(device=self.device, verbose=False)

    def _embed(self, wavs):
        import inspect

        from resemblyzer import VoiceEncoder, preprocess_wav

        # embed_utterance's own defaults: partials per second, last-partial coverage
        defaults = inspect.signature(VoiceEncoder.embed_utterance).parameters
        rate, coverage = defaults["rate"].default, defaults["min_coverage"].default
        partials, owner = [], []
        for k, w in enumerate(wavs):
            pre = preprocess_wav(w)
            if pre.shape[0] < 160:  # all trimmed away as silence: keep the raw audio
                pre = w
            wav_slices, mel_slices = self.encoder.compute_partial_slices(
                len(pre), rate, coverage
            )
            longest = wav_slices[-1].stop
            if longest >= len(pre):
                pre = np.pad(pre, (0, longest - len(pre)), "constant")
            mel = ge2e_mel(pre)
            partials.extend(mel[s] for s in mel_slices)
            owner.extend([k] * len(mel_slices))
        with torch.no_grad():
            batch = torch.from_numpy(np.array(partials)).to(self.device)
            partial_embeds = self.encoder(batch).cpu().numpy()
        owner = np.array(owner)
        embs = []
        for k in range(len(wavs)):
            raw = np.mean(partial_embeds[owner == k], axis=0)
            embs.append(torch.from_numpy(raw / np.linalg.norm(raw, 2)))
        return torch.stack(embs)


class ECAPAVerifier(SpeakerVerifier):
    """SpeechBrain ECAPA-TDNN ``EncoderClassifier``.

    Arguments
    ---------
    source : str or path
        Local directory (``hyperparams.yaml`` + checkpoints) or hub id. A local
        path that does not exist raises ``FileNotFoundError``: no download.
    savedir : str, optional
        Where a hub model is stored; defaults to the directory itself.
    device : str
    """

    name = "ecapa"

    def __init__(self, source, savedir=None, device=None):
        from speechbrain.inference.speaker import EncoderClassifier

        source, local = resolve_source(source, what="ECAPA verifier")
        device = str(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.device = torch.device(device)
        self.model = EncoderClassifier.from_hparams(
            source=source,
            savedir=savedir or (source if local else None),
            run_opts={"device": device},
        )
        self.model.eval()
        rate = getattr(self.model.hparams, "sample_rate", None)
        if rate is not None:
            self.sample_rate = int(rate)

    def _embed(self, wavs):
        batch, lens = batch_pad_right([torch.from_numpy(w).float() for w in wavs])
        with torch.no_grad():
            emb = self.model.encode_batch(batch.to(self.device), lens.to(self.device))
        return emb.reshape(len(wavs), -1)


def build_verifier(name: str, source=None, device=None) -> SpeakerVerifier:
    """``"ge2e"`` or ``"ecapa"`` (the latter needs ``source``).

    Example
    -------
    >>> build_verifier("ecapa", source=getfixture("tmp_path") / "no_such_model")
    Traceback (most recent call last):
    ...
    FileNotFoundError: ECAPA verifier directory ... does not exist ...
    """
    if name == "ge2e":
        return GE2EVerifier(device=device)
    if name == "ecapa":
        if source is None:
            raise ValueError(
                "the ECAPA verifier needs source= a local directory (train one with "
                "recipes/Synthetic/SpeakerRec/ECAPA/train_ecapa.py) or a hub id"
            )
        return ECAPAVerifier(source, device=device)
    raise ValueError(f"unknown verifier {name!r}; available: ge2e, ecapa")


def score_trials(embeddings: dict, trials, metric_name: str = "eer"):
    """Cosine scores of trials whose two utterances both have an embedding.

    Arguments
    ---------
    embeddings : dict
        ``utt_id -> tensor [D]`` (from :meth:`SpeakerVerifier.embed`).
    trials : list of Trial

    Returns
    -------
    scores : np.ndarray
    labels : np.ndarray
    dropped : list of Exclusion
        One per trial left out (naming the missing utterance).

    Example
    -------
    >>> from speechbrain_probe.metrics.trials import Trial
    >>> emb = {"a": torch.tensor([1.0, 0.0]), "b": torch.tensor([1.0, 0.0])}
    >>> s, l, d = score_trials(emb, [Trial(1, "a", "b", "x", "x"), Trial(0, "a", "c", "x", "y")])
    >>> s.tolist(), l.tolist(), d[0].utt_id
    ([1.0], [1], 'c')
    """
    keep, dropped = [], []
    for t in trials:
        missing = [u for u in (t.enrol, t.test) if u not in embeddings]
        if missing:
            dropped.append(
                Exclusion(
                    missing[0],
                    metric_name,
                    f"trial {t.enrol} vs {t.test} dropped: no embedding of {', '.join(missing)}",
                )
            )
        else:
            keep.append(t)
    if not keep:
        return np.zeros(0), np.zeros(0, dtype=int), dropped
    a = torch.stack([embeddings[t.enrol] for t in keep])
    b = torch.stack([embeddings[t.test] for t in keep])
    scores = cosine_scores(a, b).numpy().astype(np.float64)
    labels = np.array([t.label for t in keep], dtype=int)
    return scores, labels, dropped
