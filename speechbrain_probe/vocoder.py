"""Normalised log-mel spectrogram -> waveform: the :class:`Vocoder` protocol
and its default, Griffin-Lim.

:class:`Vocoder` is what the evaluation calls on any vocoder; it is
implemented by :class:`GriffinLimVocoder` (here) and by the universal
HiFi-GAN, :class:`~speechbrain_probe.hifigan.HifiGanUniversalVocoder`.

:class:`GriffinLimVocoder` inverts exactly the mel of
:mod:`speechbrain_probe.features`: normalised log-mel -> dB -> magnitude mel
-> linear magnitude by the non-negative pseudo-inverse of the mel filterbank
-> Griffin-Lim (fast Griffin-Lim with momentum, 30 iterations by default) ->
inverse pre-emphasis. It works on a padded batch with per-utterance lengths
and runs on whatever device it is given (the GPU when there is one).

On the GPU one batched Griffin-Lim is the natural choice. On a CPU, measured
with ``benchmarks/bench_griffinlim.py`` on the project's shared 2-core machine
(8 test utterances, 21 s of audio, 30 iterations, n_fft 2048): with one torch
thread, per-utterance 9.5 s, batched 14.6 s, librosa 14.2 s (equal spectral
convergence: librosa needs 38 iterations, 18.8 s); with two threads while
other jobs ran, per-utterance 57 s, batched 18 s, librosa 9.4 s (thread
oversubscription). So ``strategy="auto"`` picks batched on CUDA and
per-utterance on CPU, and ``num_threads=1`` is the setting for a shared CPU.

Those times are the torch engine's (``torch.stft``/``torch.istft``, the one on
CUDA). On a CPU the default is the CPU engine (:class:`_CpuGriffinLim`), the
same iteration up to float32 rounding: on one thread, 98 CPU-ms per 3-s
utterance instead of 290 (``benchmarks/bench_evaluation.py``; its FFTs alone
take 55); 1.2 CPU-s instead of 3.2 for 8 eSpeak utterances, 32 s of audio
(``benchmarks/bench_griffinlim.py --threads 1 --n 8``).
"""

from __future__ import annotations

import abc
import math
from collections import OrderedDict

import numpy as np
import torch
from speechbrain.utils.data_utils import batch_pad_right

from speechbrain_probe.devices import torch_threads
from speechbrain_probe.features import MelConfig, deemphasis, istft, stft

__all__ = [
    "Vocoder",
    "GriffinLimVocoder",
    "mel_pseudo_inverse",
    "spectral_convergence",
    "frames_from_lengths",
]

#: How a vocoder runs a batch (see :class:`Vocoder`).
STRATEGIES = ("auto", "batched", "per_utterance")


def frames_from_lengths(lengths, num_frames: int) -> torch.Tensor:
    """Absolute frame counts from SpeechBrain-style lengths.

    Arguments
    ---------
    lengths : tensor or list
        Relative lengths in ``(0, 1]`` (floats) or absolute frame counts
        (integers).
    num_frames : int
        Padded number of frames of the batch.

    Example
    -------
    >>> frames_from_lengths(torch.tensor([1.0, 0.5]), 10)
    tensor([10,  5])
    >>> frames_from_lengths([7, 10], 10)
    tensor([ 7, 10])
    """
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


class Vocoder(torch.nn.Module, abc.ABC):
    """Normalised log-mel ``[B, T, n_mels]`` -> one waveform per utterance.

    What the evaluation uses of a vocoder: :attr:`config` (the mel it
    decodes; its sample rate is the output's), :attr:`device`,
    :meth:`synthesize`, :meth:`forward` and :meth:`spec`. A subclass sets
    ``config`` and implements :meth:`spec` and :meth:`_synthesize`.

    Arguments
    ---------
    strategy : str
        ``"batched"`` (one pass over the padded batch), ``"per_utterance"``
        (one at a time, no padding), or ``"auto"`` (batched on CUDA,
        per-utterance on CPU: measured faster there).
    device : str or torch.device, optional
        Where to run (default: CUDA when available).
    num_threads : int, optional
        CPU threads torch may use while synthesising (restored afterwards).
    """

    config: MelConfig

    def __init__(self, strategy: str = "auto", device=None, num_threads=None):
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {strategy!r}; use 'auto', 'batched' or 'per_utterance'"
            )
        self.strategy = strategy
        self.device = torch.device(
            device or ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.num_threads = num_threads

    @property
    def sample_rate(self) -> int:
        """Output sample rate in Hz (the mel's)."""
        return self.config.sample_rate

    @abc.abstractmethod
    def spec(self) -> dict:
        """Constructor arguments of an equal per-utterance CPU vocoder: what
        a worker process rebuilds it from
        (:func:`~speechbrain_probe.evaluation.pool.synthesize_to_file`)."""

    @abc.abstractmethod
    def _synthesize(self, mel: torch.Tensor, frames: torch.Tensor) -> list:
        """Waveforms of ``mel`` ``[B, T, n_mels]``, utterance ``i`` being
        ``frames[i]`` frames long (without gradients)."""

    def _use_batched(self) -> bool:
        if self.strategy == "auto":
            return self.device.type == "cuda"
        return self.strategy == "batched"

    def _frame_mask(self, frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``[B, num_frames]`` on :attr:`device`: True within each utterance."""
        steps = torch.arange(num_frames, device=self.device)
        return steps[None, :] < frames.to(self.device).unsqueeze(1)

    def synthesize(self, mel: torch.Tensor, lengths=None) -> list[torch.Tensor]:
        """Waveforms (one 1-D CPU tensor per utterance) of ``mel``.

        Arguments
        ---------
        mel : tensor
            Normalised log-mel, ``[B, T, n_mels]`` or ``[T, n_mels]``.
        lengths : tensor or list, optional
            Relative (float) or absolute (int, frames) lengths; None: every
            utterance fills the batch.

        Returns
        -------
        list of tensors of ``(frames - 1) * hop`` samples at
        :attr:`sample_rate`, aligned with the audio whose centred STFT gave
        the mel.

        Example
        -------
        >>> voc = GriffinLimVocoder(n_iter=1, device="cpu")
        >>> wavs = voc.synthesize(torch.rand(2, 41, 80), lengths=[41, 21])
        >>> [w.shape[0] for w in wavs]
        [8000, 4000]
        """
        if mel.dim() == 2:
            mel = mel.unsqueeze(0)
        if mel.dim() != 3:
            raise ValueError(
                f"mel must be [B, T, n_mels], got shape {tuple(mel.shape)}"
            )
        batch, num_frames, _ = mel.shape
        if lengths is None:
            frames = torch.full((batch,), num_frames, dtype=torch.long)
        else:
            frames = frames_from_lengths(lengths, num_frames)
        with torch_threads(self.num_threads), torch.no_grad():
            return self._synthesize(mel, frames)

    def forward(self, mel: torch.Tensor, lengths=None):
        """Padded waveforms ``[B, S]`` (on the CPU) and their relative lengths."""
        return batch_pad_right([w.float() for w in self.synthesize(mel, lengths)])


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


ENGINES = ("auto", "torch", "cpu")

_EPS = np.float32(1e-16)  # the clamp of |angles| in the torch engine


def _project_py(rebuilt, previous, magnitude, alpha, out):
    """``out = magnitude * c / max(|c|, 1e-16)`` with ``c = rebuilt - alpha * previous``.

    One fused pass of fast Griffin-Lim's update (numba-compiled by
    :func:`_kernels`); all arrays ``[T, F]``, complex64 except ``magnitude``.
    """
    for t in range(rebuilt.shape[0]):
        r, p, m, o = rebuilt[t], previous[t], magnitude[t], out[t]
        for f in range(r.shape[0]):
            cr = r[f].real - alpha * p[f].real
            ci = r[f].imag - alpha * p[f].imag
            a = max(np.float32(math.sqrt(cr * cr + ci * ci)), _EPS)
            s = m[f] / a
            o[f] = complex(cr * s, ci * s)


def _overlap_add_py(frames, window, hop, envelope, lead, signal):
    """Windowed overlap-add of ``frames[:, :W]`` divided by ``envelope``.

    ``signal[i]`` for ``lead <= i < lead + len(envelope)`` is the sum over the
    frames ``t`` with ``t * hop <= i < t * hop + W`` of
    ``frames[t, i - t * hop] * window[i - t * hop]``, divided by
    ``envelope[i - lead]``: ``torch.istft`` restricted to the window's support.
    """
    width = window.shape[0]
    signal[:] = 0
    for t in range(frames.shape[0]):
        # 1-D views and loops from 0: numba vectorises these (2.5x faster)
        out, frame = signal[t * hop : t * hop + width], frames[t]
        for j in range(width):
            out[j] += frame[j] * window[j]
    kept = signal[lead : lead + envelope.shape[0]]
    for i in range(kept.shape[0]):
        kept[i] /= envelope[i]


def _reframe_py(signal, window, hop, lead, length, frames):
    """Reflect-pad ``signal[lead:lead + length]`` in place (``torch.stft``'s
    ``center=True`` padding, as far as the window reaches) and write its
    windowed frames to ``frames[:, :W]``."""
    for k in range(1, lead + 1):
        signal[lead - k] = signal[lead + k]
    last = lead + length - 1
    for k in range(1, signal.shape[0] - last):
        signal[last + k] = signal[last - k]
    width = window.shape[0]
    for t in range(frames.shape[0]):
        source, frame = signal[t * hop : t * hop + width], frames[t]
        for j in range(width):
            frame[j] = source[j] * window[j]


_KERNELS = None


def _kernels():
    """The fused loops, compiled by numba once per process.

    The machine code is cached on disk (``__pycache__``, or numba's user
    cache when that is read-only): a new process spends about 1 CPU-s
    loading it (numba's import included) instead of 3 compiling; without a
    writable cache every process compiles.
    """
    global _KERNELS
    if _KERNELS is None:
        from numba import njit

        loops = (_project_py, _overlap_add_py, _reframe_py)
        try:
            _KERNELS = tuple(njit(cache=True, nogil=True)(f) for f in loops)
        except RuntimeError:  # numba: "cannot cache function ...": no locator
            _KERNELS = tuple(njit(nogil=True)(f) for f in loops)
    return _KERNELS


class _CpuGriffinLim:
    """Fast Griffin-Lim on a CPU, equal to the torch engine up to float rounding.

    ``torch.stft``/``torch.istft`` spend most of a per-utterance Griffin-Lim
    outside their FFTs: padding, complex temporaries, the window envelope
    recomputed at every inverse, ``abs`` of complex tensors (profiled on
    one thread: the FFTs were a fifth of its time). Here, with ``N`` the FFT size, ``W``
    the window and ``H`` the hop:

    * a frame holds only the ``W`` samples under the window, at the start of
      its ``N``-sample FFT buffer instead of at offset ``o = (N - W) // 2``.
      That circular shift multiplies STFT bin ``k`` by ``exp(2j pi k o / N)``,
      a fixed unit factor that commutes with the whole iteration (momentum,
      normalisation), so it is applied once, to the initial phase, and never
      undone (the inverse FFT of a shifted spectrum gives the shifted frame);
    * the centred STFT's reflect padding is written in place, only as far as
      the window reaches (``N // 2 - o`` samples);
    * the initial unit phase of a frame count is kept (up to
      :attr:`phase_cache_bytes`): the study reconstructs every utterance once
      per layer, and drawing, transposing and ``cos``/``sin`` cost 3 ms;
    * the overlap-add envelope is computed once per call; the update
      ``magnitude * c / |c|``, the overlap-add and the framing are fused
      loops (numba); the FFTs are real FFTs (``torch.fft``, MKL) of
      ``[T, N]`` frame matrices; float32 throughout, like the torch engine.
    """

    #: bytes of initial phases kept (32 MB: sixteen 3-s utterances)
    phase_cache_bytes = 32 << 20

    def __init__(self, config: MelConfig, window: torch.Tensor):
        self._phases: OrderedDict = OrderedDict()
        self.n_fft = config.n_fft
        self.hop = config.hop_length
        self.window = window.detach().cpu().numpy().astype(np.float32)
        self.width = self.window.shape[0]
        offset = (self.n_fft - self.width) // 2
        self.lead = self.n_fft // 2 - offset
        self.bins = self.n_fft // 2 + 1
        k = np.arange(self.bins)
        self.shift = np.exp(2j * np.pi * k * offset / self.n_fft).astype(np.complex64)

    def envelope(self, magnitude: torch.Tensor, num_samples: int):
        """The overlap-add envelope ``sum_t window[i - t * hop] ** 2`` over the
        output samples, or None where the input is not the regular case (then
        the torch engine runs).

        Regular: a float32 CPU ``[F, T]`` or ``[B, F, T]`` magnitude without
        autograd, ``num_samples = (T - 1) * hop`` (what the vocoder asks for)
        and more than ``n_fft // 2`` (``torch.stft``'s reflect padding needs
        that), and an envelope without zeros (``torch.istft`` raises then).
        """
        if (
            magnitude.device.type != "cpu"
            or magnitude.dtype != torch.float32
            or magnitude.requires_grad
            or magnitude.dim() not in (2, 3)
            or magnitude.shape[-2] != self.bins
            or self.width > self.n_fft
        ):
            return None
        num_frames = magnitude.shape[-1]
        if num_samples != (num_frames - 1) * self.hop or num_samples <= self.n_fft // 2:
            return None
        hop, width = self.hop, self.width
        chunks = -(-width // hop)
        blocks = np.zeros((num_frames + chunks - 1, hop), np.float32)
        square = self.window * self.window
        for q in range(chunks):
            part = square[q * hop : (q + 1) * hop]
            blocks[q : q + num_frames, : part.shape[0]] += part
        env = blocks.reshape(-1)[self.lead : self.lead + num_samples].copy()
        return env if env.min() >= 1e-11 else None

    def unit_phase(self, theta: torch.Tensor) -> np.ndarray:
        """``exp(1j * theta)`` of ``theta`` ``[F, T]`` (float32 radians),
        transposed to ``[T, F]`` and moved to frames that start at the
        window's first sample (``* shift``), complex64."""
        theta = theta.T.contiguous()
        unit = np.empty(theta.shape, np.complex64)
        unit.real = torch.cos(theta).numpy()
        unit.imag = torch.sin(theta).numpy()
        unit *= self.shift
        return unit

    def initial_phase(self, seed: int, num_frames: int) -> np.ndarray:
        """:meth:`unit_phase` of the torch engine's draw for ``[F, T]``,
        ``2 pi * torch.rand((F, T))`` after ``manual_seed(seed)``, kept for
        the next call with as many frames (least recently used dropped)."""
        key = (seed, num_frames)
        unit = self._phases.get(key)
        if unit is not None:
            self._phases.move_to_end(key)
            return unit
        gen = torch.Generator(device="cpu").manual_seed(seed)
        unit = self.unit_phase(
            2 * math.pi * torch.rand((self.bins, num_frames), generator=gen)
        )
        self._phases[key] = unit
        kept = sum(u.nbytes for u in self._phases.values())
        while kept > self.phase_cache_bytes and len(self._phases) > 1:
            kept -= self._phases.popitem(last=False)[1].nbytes
        return unit

    def __call__(self, magnitude, unit, envelope, n_iter: int, alpha: float):
        """Waveform ``[num_samples]`` (tensor) of ``magnitude`` ``[F, T]``
        (tensor) from the initial ``unit`` phase of :meth:`unit_phase`."""
        project, overlap_add, reframe = _kernels()
        num_samples = envelope.shape[0]
        mag = np.ascontiguousarray(magnitude.detach().numpy().T)
        spec = np.multiply(unit, mag)  # complex64 [T, F]
        signal = np.empty((mag.shape[0] - 1) * self.hop + self.width, np.float32)
        frames = torch.zeros(mag.shape[0], self.n_fft)
        previous, weight = None, np.float32(0.0)  # no momentum at the first step
        for _ in range(n_iter):
            inverse = torch.fft.irfft(torch.from_numpy(spec), n=self.n_fft).numpy()
            overlap_add(inverse, self.window, self.hop, envelope, self.lead, signal)
            reframe(
                signal, self.window, self.hop, self.lead, num_samples, frames.numpy()
            )
            rebuilt = torch.fft.rfft(frames).numpy()
            if previous is None:
                previous = rebuilt
            project(rebuilt, previous, mag, weight, spec)
            previous, weight = rebuilt, np.float32(alpha)
        inverse = torch.fft.irfft(torch.from_numpy(spec), n=self.n_fft).numpy()
        overlap_add(inverse, self.window, self.hop, envelope, self.lead, signal)
        return torch.from_numpy(signal[self.lead : self.lead + num_samples].copy())


class GriffinLimVocoder(Vocoder):
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
    strategy, device, num_threads
        As for every :class:`Vocoder`. On a 2-core machine shared with other
        jobs, 1 thread was 6x faster than 2 for per-utterance synthesis
        (``benchmarks/bench_griffinlim.py``).
    seed : int
        Seed of the random initial phase (results are reproducible).
    engine : str
        ``"torch"`` (``torch.stft``/``torch.istft``, any device), ``"cpu"``
        (:class:`_CpuGriffinLim`: the same iteration, equal up to float32
        rounding, 3x faster per utterance on one CPU thread), or
        ``"auto"`` (``"cpu"`` on a CPU device, ``"torch"`` elsewhere).
        Inputs the CPU engine does not handle (a batch on another device,
        a length other than ``(T - 1) * hop``) go to the torch engine.

    Example
    -------
    >>> from speechbrain_probe.features import LogMelSpectrogram
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
        engine: str = "auto",
    ):
        super().__init__(strategy, device, num_threads)
        config = MelConfig.of(config)
        if n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {n_iter}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; use 'auto', 'torch' or 'cpu'")
        self.config = config
        self.n_iter = n_iter
        self.momentum = momentum
        self.power = power
        self.seed = seed
        if engine == "cpu" and self.device.type != "cpu":
            raise ValueError(
                f"engine 'cpu' runs on the CPU, not on {self.device}; use "
                "engine='auto' or 'torch'"
            )
        self.engine = engine
        self.register_buffer("pinv", mel_pseudo_inverse(config), persistent=False)
        self.register_buffer(
            "window", torch.hann_window(config.win_length), persistent=False
        )
        self._cpu = _CpuGriffinLim(config, self.window)
        self.to(self.device)

    def spec(self) -> dict:
        """Constructor arguments of an equal per-utterance CPU vocoder.

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
            engine="torch" if self.engine == "torch" else "cpu",
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

        Returns the waveform in the pre-emphasised domain, ``[B, num_samples]``
        (``[num_samples]`` for ``[F, T]``). Both engines start from the same
        seeded random phase.

        Example
        -------
        >>> voc = GriffinLimVocoder(device="cpu")
        >>> mag = voc.mel_to_linear(torch.rand(41, 80))
        >>> fast = voc.griffin_lim(mag, 40 * 200)
        >>> ref = GriffinLimVocoder(device="cpu", engine="torch").griffin_lim(mag, 40 * 200)
        >>> fast.shape, bool((fast - ref).abs().max() < 1e-3 * ref.abs().max())
        (torch.Size([8000]), True)
        """
        n_iter = self.n_iter if n_iter is None else n_iter
        alpha = self.momentum / (1 + self.momentum)
        envelope = None
        if self.engine != "torch":
            envelope = self._cpu.envelope(magnitude, num_samples)
        if envelope is not None and magnitude.dim() == 2:
            unit = self._cpu.initial_phase(self.seed, magnitude.shape[-1])
            return self._cpu(magnitude, unit, envelope, n_iter, alpha)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        phase = torch.rand(magnitude.shape, generator=gen).to(magnitude.device)
        theta = 2 * math.pi * phase
        if envelope is not None:  # a batch on the CPU, row by row
            return torch.stack(
                [
                    self._cpu(m, self._cpu.unit_phase(th), envelope, n_iter, alpha)
                    for m, th in zip(magnitude, theta)
                ]
            )
        angles = torch.polar(torch.ones_like(magnitude), theta)
        previous = torch.zeros_like(angles)
        for _ in range(n_iter):
            rebuilt = self.stft(self.istft(magnitude * angles, num_samples))
            angles = rebuilt - alpha * previous if alpha > 0 else rebuilt
            angles = angles / angles.abs().clamp(min=1e-16)
            previous = rebuilt
        return self.istft(magnitude * angles, num_samples)

    def _synthesize(self, mel, frames):
        num_frames = mel.shape[1]
        hop = self.config.hop_length
        coef = self.config.preemphasis
        if self._use_batched():
            magnitude = self.mel_to_linear(mel)
            mask = self._frame_mask(frames, num_frames)
            magnitude = magnitude * mask.unsqueeze(1)
            wavs = self.griffin_lim(magnitude, (num_frames - 1) * hop)
            wavs = deemphasis(wavs, coef)
            return [w[: (n - 1) * hop].cpu() for w, n in zip(wavs, frames.tolist())]
        out = []
        for m, n in zip(mel, frames.tolist()):
            magnitude = self.mel_to_linear(m[:n])
            wav = self.griffin_lim(magnitude, (n - 1) * hop)
            out.append(self._deemphasis(wav, coef).cpu())
        return out

    def _deemphasis(self, wav: torch.Tensor, coef: float) -> torch.Tensor:
        """:func:`~speechbrain_probe.features.deemphasis`; with the CPU engine
        by scipy's ``lfilter`` (the same float32 recursion, 3x faster than
        torchaudio's on one 3-s utterance; equal bit for bit when measured)."""
        if self.engine == "torch" or coef == 0 or wav.device.type != "cpu":
            return deemphasis(wav, coef)
        if wav.dtype != torch.float32 or wav.requires_grad:
            return deemphasis(wav, coef)
        from scipy.signal import lfilter

        b = np.array([1.0], np.float32)
        a = np.array([1.0, -coef], np.float32)
        return torch.from_numpy(lfilter(b, a, wav.numpy(), axis=-1))
