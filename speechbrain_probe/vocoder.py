"""Normalised log-mel spectrogram -> waveform.

The default vocoder inverts exactly the mel of :mod:`speechbrain_probe.features`:
normalised log-mel -> dB -> magnitude mel -> linear magnitude by the
non-negative pseudo-inverse of the mel filterbank -> Griffin-Lim (fast
Griffin-Lim with momentum, 30 iterations by default) -> inverse pre-emphasis.
It works on a padded batch with per-utterance lengths and runs on whatever
device it is given (the GPU when there is one).

On the GPU one batched Griffin-Lim is the natural choice. On a CPU, measured
with ``benchmarks/bench_griffinlim.py`` on the project's shared 2-core machine
(8 test utterances, 21 s of audio, 30 iterations, n_fft 2048): with one torch
thread, per-utterance 9.5 s, batched 14.6 s, librosa 14.2 s (equal spectral
convergence: librosa needs 38 iterations, 18.8 s); with two threads while
other jobs ran, per-utterance 57 s, batched 18 s, librosa 9.4 s (thread
oversubscription). So ``strategy="auto"`` picks batched on CUDA and
per-utterance on CPU, and ``num_threads=1`` is the setting for a shared CPU.

A neural vocoder can replace Griffin-Lim through SpeechBrain's ``HIFIGAN``
interface (:class:`HifiGanVocoder`), from a local directory or a hub id.
"""

from __future__ import annotations

import math

import torch
from speechbrain.utils.data_utils import batch_pad_right

from speechbrain_probe.features import (
    LogMelSpectrogram,
    MelConfig,
    deemphasis,
    istft,
    stft,
)
from speechbrain_probe.pretrained import resolve_source

__all__ = [
    "GriffinLimVocoder",
    "HifiGanVocoder",
    "copy_synthesis",
    "mel_pseudo_inverse",
    "spectral_convergence",
    "frames_from_lengths",
]


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def frames_from_lengths(lengths, num_frames: int) -> torch.Tensor:
    """Absolute frame counts from SpeechBrain-style lengths.

    Arguments
    ---------
    lengths : tensor, list or None
        Relative lengths in ``(0, 1]`` (floats) or absolute frame counts
        (integers). None: every utterance fills the batch.
    num_frames : int
        Padded number of frames of the batch.

    Example
    -------
    >>> frames_from_lengths(torch.tensor([1.0, 0.5]), 10)
    tensor([10,  5])
    >>> frames_from_lengths([7, 10], 10)
    tensor([ 7, 10])
    """
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths)
    if lengths.is_floating_point():
        if (lengths <= 0).any() or (lengths > 1 + 1e-6).any():
            raise ValueError(
                "float lengths must be relative, in (0, 1]; pass integer frame "
                f"counts for absolute lengths (got {lengths.tolist()})"
            )
        frames = torch.round(lengths * num_frames).long()
    else:
        frames = lengths.long()
    if (frames < 1).any() or (frames > num_frames).any():
        raise ValueError(
            f"frame lengths {frames.tolist()} outside 1..{num_frames} (batch frames)"
        )
    return frames.cpu()


def mel_pseudo_inverse(config: MelConfig, device=None) -> torch.Tensor:
    """Pseudo-inverse of the mel filterbank, ``[n_mels, n_freqs]``.

    ``linear ~= clamp(mel @ P, min=0)`` inverts ``mel = linear @ fbank``.

    Example
    -------
    >>> P = mel_pseudo_inverse(MelConfig())
    >>> P.shape
    torch.Size([80, 1025])
    """
    fb = config.mel_filterbank().double()
    return torch.linalg.pinv(fb).float().to(device or "cpu")


def spectral_convergence(wav: torch.Tensor, magnitude: torch.Tensor, stft) -> float:
    """``||S - |STFT(wav)|||_F / ||S||_F`` (lower is better).

    Arguments
    ---------
    wav : tensor ``[S]``
        The waveform (before de-emphasis, i.e. in the STFT's domain).
    magnitude : tensor ``[F, T]``
        The target magnitude.
    stft : callable
        ``wav -> complex [F, T]``.
    """
    rebuilt = stft(wav).abs()
    t = min(rebuilt.shape[-1], magnitude.shape[-1])
    diff = magnitude[..., :t] - rebuilt[..., :t]
    return float(diff.norm() / magnitude[..., :t].norm().clamp(min=1e-12))


class GriffinLimVocoder(torch.nn.Module):
    """Invert the normalised log-mel of :class:`~speechbrain_probe.features.LogMelSpectrogram`.

    Arguments
    ---------
    config : MelConfig or dict
        The mel settings of the spectrograms to invert.
    n_iter : int
        Griffin-Lim iterations (the paper: 30).
    momentum : float
        Fast Griffin-Lim momentum (0 gives the classic algorithm).
    power : float
        Exponent applied to the linear magnitude before phase retrieval
        (1: none; >1 sharpens, as some Tacotron-era recipes did).
    strategy : str
        ``"batched"`` (one Griffin-Lim over the padded batch),
        ``"per_utterance"`` (one at a time, no padding), or ``"auto"``
        (batched on CUDA, per-utterance on CPU: measured faster there).
    device : str or torch.device
        Where to run (default: CUDA when available).
    seed : int
        Seed of the random initial phase (results are reproducible).
    num_threads : int, optional
        CPU threads torch may use while synthesising (restored afterwards).
        On a 2-core machine shared with other jobs, 1 thread was 6x faster
        than 2 for per-utterance synthesis (``benchmarks/bench_griffinlim.py``).

    Example
    -------
    >>> mel = LogMelSpectrogram()
    >>> wav = torch.randn(2, 8000) * 0.1
    >>> voc = GriffinLimVocoder(n_iter=2, device="cpu")
    >>> out, lens = voc(mel(wav))
    >>> out.shape, lens.tolist()
    (torch.Size([2, 8000]), [1.0, 1.0])
    """

    def __init__(
        self,
        config: MelConfig | dict | None = None,
        n_iter: int = 30,
        momentum: float = 0.99,
        power: float = 1.0,
        strategy: str = "auto",
        device=None,
        seed: int = 0,
        num_threads: int | None = None,
    ):
        super().__init__()
        if config is None:
            config = MelConfig()
        elif isinstance(config, dict):
            config = MelConfig.from_dict(config)
        if n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {n_iter}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if strategy not in ("auto", "batched", "per_utterance"):
            raise ValueError(
                f"unknown strategy {strategy!r}; use 'auto', 'batched' or 'per_utterance'"
            )
        self.config = config
        self.n_iter = n_iter
        self.momentum = momentum
        self.power = power
        self.strategy = strategy
        self.seed = seed
        self.num_threads = num_threads
        self.device = torch.device(device or _default_device())
        self.register_buffer("pinv", mel_pseudo_inverse(config), persistent=False)
        self.register_buffer(
            "window", torch.hann_window(config.win_length), persistent=False
        )
        self.to(self.device)

    def spec(self) -> dict:
        """Constructor arguments of an equal per-utterance CPU vocoder.

        A worker process rebuilds the vocoder from it
        (:func:`~speechbrain_probe.evaluation.pool.synthesize_to_file`).

        Example
        -------
        >>> v = GriffinLimVocoder(n_iter=5, device="cpu")
        >>> GriffinLimVocoder(**v.spec()).n_iter
        5
        """
        return dict(
            config=self.config,
            n_iter=self.n_iter,
            momentum=self.momentum,
            power=self.power,
            strategy="per_utterance",
            device="cpu",
            seed=self.seed,
            num_threads=self.num_threads,
        )

    # ------------------------------------------------------------------ pieces
    def mel_to_linear(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``[..., T, n_mels]`` -> linear magnitude ``[..., n_freqs, T]``."""
        if mel.shape[-1] != self.config.n_mels:
            raise ValueError(
                f"mel has {mel.shape[-1]} bands but the vocoder's MelConfig has "
                f"{self.config.n_mels}; pass the MelConfig the mel was computed with"
            )
        db = self.config.denormalize_db(mel.to(self.device, torch.float32))
        mel_mag = torch.pow(10.0, db / 20.0)
        linear = (mel_mag @ self.pinv).clamp(min=0.0)
        if self.power != 1.0:
            linear = linear.pow(self.power)
        return linear.transpose(-1, -2)

    def stft(self, wav: torch.Tensor) -> torch.Tensor:
        """Complex STFT with the settings of the mel."""
        return stft(wav, self.config, self.window)

    def istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Inverse of :meth:`stft`."""
        return istft(spec, self.config, self.window, length)

    def griffin_lim(
        self, magnitude: torch.Tensor, num_samples: int, n_iter: int | None = None
    ) -> torch.Tensor:
        """Fast Griffin-Lim of ``magnitude`` ``[B, F, T]`` (or ``[F, T]``).

        Returns the waveform in the pre-emphasised domain, ``[B, num_samples]``.
        """
        n_iter = self.n_iter if n_iter is None else n_iter
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        phase = torch.rand(magnitude.shape, generator=gen).to(magnitude.device)
        angles = torch.polar(torch.ones_like(magnitude), 2 * math.pi * phase)
        alpha = self.momentum / (1 + self.momentum)
        previous = torch.zeros_like(angles)
        for _ in range(n_iter):
            rebuilt = self.stft(self.istft(magnitude * angles, num_samples))
            angles = rebuilt - alpha * previous if alpha > 0 else rebuilt
            angles = angles / angles.abs().clamp(min=1e-16)
            previous = rebuilt
        return self.istft(magnitude * angles, num_samples)

    # ----------------------------------------------------------------- public
    def _use_batched(self) -> bool:
        if self.strategy == "auto":
            return self.device.type == "cuda"
        return self.strategy == "batched"

    def synthesize(self, mel: torch.Tensor, lengths=None) -> list[torch.Tensor]:
        """Waveforms (one tensor per utterance, on CPU) of ``mel`` ``[B, T, n_mels]``.

        Arguments
        ---------
        mel : tensor
            Normalised log-mel, ``[B, T, n_mels]`` or ``[T, n_mels]``.
        lengths : tensor or list, optional
            Relative (float) or absolute (int, frames) lengths.

        Example
        -------
        >>> voc = GriffinLimVocoder(n_iter=1, device="cpu")
        >>> wavs = voc.synthesize(torch.rand(2, 41, 80), lengths=[41, 21])
        >>> [w.shape[0] for w in wavs]
        [8000, 4000]
        """
        previous = torch.get_num_threads()
        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        try:
            with torch.no_grad():
                return self._synthesize(mel, lengths)
        finally:
            torch.set_num_threads(previous)

    def _synthesize(self, mel, lengths):
        if mel.dim() == 2:
            mel = mel.unsqueeze(0)
        if mel.dim() != 3:
            raise ValueError(
                f"mel must be [B, T, n_mels], got shape {tuple(mel.shape)}"
            )
        batch, num_frames, _ = mel.shape
        frames = frames_from_lengths(lengths, num_frames)
        if frames is None:
            frames = torch.full((batch,), num_frames, dtype=torch.long)
        hop = self.config.hop_length
        coef = self.config.preemphasis
        if self._use_batched():
            magnitude = self.mel_to_linear(mel)
            mask = torch.arange(num_frames, device=self.device)[None, :] < frames.to(
                self.device
            ).unsqueeze(1)
            magnitude = magnitude * mask.unsqueeze(1)
            wavs = self.griffin_lim(magnitude, (num_frames - 1) * hop)
            wavs = deemphasis(wavs, coef)
            return [w[: (n - 1) * hop].cpu() for w, n in zip(wavs, frames.tolist())]
        out = []
        for m, n in zip(mel, frames.tolist()):
            magnitude = self.mel_to_linear(m[:n])
            wav = self.griffin_lim(magnitude, (n - 1) * hop)
            out.append(deemphasis(wav, coef).cpu())
        return out

    def forward(self, mel: torch.Tensor, lengths=None):
        """Padded waveforms ``[B, S]`` and their relative lengths ``[B]``."""
        return batch_pad_right([w.float() for w in self.synthesize(mel, lengths)])


def copy_synthesis(
    wavs, vocoder: GriffinLimVocoder | None = None, **vocoder_kwargs
) -> list[torch.Tensor]:
    """Griffin-Lim of the true mel: the reference row of every table.

    It separates what the vocoder loses from what a probed layer loses.

    Arguments
    ---------
    wavs : list of 1-D tensors or arrays
        Waveforms at the vocoder's sample rate.
    vocoder : GriffinLimVocoder, optional
        Built with ``vocoder_kwargs`` when not given.

    Returns
    -------
    list of 1-D tensors, each as long as its input (up to one hop's rounding).

    Example
    -------
    >>> out = copy_synthesis([torch.randn(4000) * 0.1], n_iter=2, device="cpu")
    >>> out[0].shape
    torch.Size([4000])
    """
    vocoder = vocoder or GriffinLimVocoder(**vocoder_kwargs)
    mel = LogMelSpectrogram(vocoder.config).to(vocoder.device)
    wavs = [torch.as_tensor(w, dtype=torch.float32).reshape(-1) for w in wavs]
    out = []
    for w in wavs:
        feats = mel(w.to(vocoder.device).unsqueeze(0))
        rebuilt = vocoder.synthesize(feats)[0]
        # (T-1)*hop samples come back; pad the last fraction of a hop with zeros
        full = torch.zeros(w.shape[0])
        n = min(full.shape[0], rebuilt.shape[0])
        full[:n] = rebuilt[:n]
        out.append(full)
    return out


class HifiGanVocoder:
    """A neural vocoder through SpeechBrain's ``HIFIGAN`` interface.

    The HiFi-GAN must have been trained on the same mel settings (sample
    rate, hop, number of mels) as the spectrograms it decodes. It receives
    the natural log of the magnitude mel, ``log(clamp(mel, 1e-5))``, the input
    format of SpeechBrain's HiFi-GAN recipes.

    Arguments
    ---------
    source : str or path
        Local directory with ``hyperparams.yaml`` and ``generator.ckpt``
        (pretrained format), or a hub id (``speechbrain/tts-hifigan-...``).
        A local path that does not exist is an error, never a download.
    config : MelConfig or dict
        The mel settings of the spectrograms to decode.
    savedir : str, optional
        Where a hub model is stored (defaults to the directory itself for a
        local source).
    device : str
        Device to run on.
    """

    def __init__(self, source, config=None, savedir=None, device=None):
        from speechbrain.inference.vocoders import HIFIGAN

        if config is None:
            config = MelConfig()
        elif isinstance(config, dict):
            config = MelConfig.from_dict(config)
        self.config = config
        source, local = resolve_source(source, what="HiFi-GAN vocoder")
        if savedir is None:
            savedir = source if local else None
        device = str(device or _default_device())
        self.model = HIFIGAN.from_hparams(
            source=source, savedir=savedir, run_opts={"device": device}
        )
        self.device = torch.device(device)
        ups = getattr(self.model.hparams, "upsample_factors", None)
        if ups is None:
            gen = self.model.hparams.generator
            ups = [getattr(u, "conv", u).stride[0] for u in getattr(gen, "ups", [])]
            ups = ups or None
        if ups is not None and math.prod(ups) != config.hop_length:
            raise ValueError(
                f"HiFi-GAN upsamples by {math.prod(ups)} samples per frame but the "
                f"mel hop is {config.hop_length}; use a HiFi-GAN trained on this "
                "MelConfig"
            )

    def mel_to_input(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel ``[B, T, n_mels]`` -> HiFi-GAN input ``[B, n_mels, T]``."""
        db = self.config.denormalize_db(mel.float())
        log_mel = db / 20.0 * math.log(10.0)
        return log_mel.clamp(min=math.log(1e-5)).transpose(1, 2)

    @torch.no_grad()
    def synthesize(self, mel: torch.Tensor, lengths=None) -> list[torch.Tensor]:
        """Waveforms (one per utterance, on CPU) of ``mel`` ``[B, T, n_mels]``."""
        if mel.dim() == 2:
            mel = mel.unsqueeze(0)
        frames = frames_from_lengths(lengths, mel.shape[1])
        if frames is None:
            frames = torch.full((mel.shape[0],), mel.shape[1], dtype=torch.long)
        wav = self.model.decode_batch(self.mel_to_input(mel).to(self.device))
        wav = wav.squeeze(1).cpu()
        hop = self.config.hop_length
        # HiFi-GAN's inference pads the mel on both sides (replicate): drop the
        # samples of the leading padding, then keep (frames - 1) hops like
        # Griffin-Lim (a centred STFT of S samples has 1 + S // hop frames).
        pad = getattr(self.model.hparams.generator, "inference_padding", 0) * hop
        return [w[pad : pad + (n - 1) * hop] for w, n in zip(wav, frames.tolist())]

    def __call__(self, mel, lengths=None):
        """Padded waveforms ``[B, S]`` (on the CPU) and relative lengths."""
        wavs = self.synthesize(mel, lengths)
        return batch_pad_right([w.float().cpu() for w in wavs])
