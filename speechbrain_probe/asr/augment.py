"""SpecAugment-style masking of stacked mel + delta features.

The ASR input ``[B, T, C * F]`` holds ``C`` channels (static, delta,
delta-delta) of ``F`` mel bands each. A frequency mask must hide the same bands
in every channel, so masks are drawn on the ``[B, T, C, F]`` view (SpeechBrain's
``SpectrogramDrop`` would mask a contiguous run of the flat 240 dims instead).
"""

from __future__ import annotations

import torch

__all__ = ["FeatureMasking"]


class FeatureMasking(torch.nn.Module):
    """Random time and frequency masks (set to ``fill``) during training.

    Arguments
    ---------
    n_freq_masks : int
        Frequency masks per utterance.
    max_freq_width : int
        Widest frequency mask, in mel bands.
    n_time_masks : int
        Time masks per utterance.
    max_time_width : int
        Widest time mask, in frames.
    channels : int
        Feature channels stacked in the last dim (3: mel, delta, delta-delta).
    fill : float
        Value written into masked cells (0 = the mean after normalisation).

    Example
    -------
    >>> torch.manual_seed(0) is not None
    True
    >>> aug = FeatureMasking(n_freq_masks=2, max_freq_width=10, n_time_masks=2,
    ...                      max_time_width=5, channels=3)
    >>> x = torch.ones(2, 50, 240)
    >>> y = aug(x)
    >>> y.shape, bool((y == 0).any()), bool((y == 1).any())
    (torch.Size([2, 50, 240]), True, True)
    >>> v = y.view(2, 50, 3, 80)
    >>> bool((v[:, :, 0] == v[:, :, 2]).all())  # same bands in every channel
    True
    """

    def __init__(
        self,
        n_freq_masks: int = 2,
        max_freq_width: int = 10,
        n_time_masks: int = 2,
        max_time_width: int = 20,
        channels: int = 3,
        fill: float = 0.0,
    ):
        super().__init__()
        self.n_freq_masks = n_freq_masks
        self.max_freq_width = max_freq_width
        self.n_time_masks = n_time_masks
        self.max_time_width = max_time_width
        self.channels = channels
        self.fill = fill

    @staticmethod
    def _mask(batch: int, size: int, n: int, max_width: int, device) -> torch.Tensor:
        """Boolean ``[batch, size]``: union of ``n`` random spans per row."""
        mask = torch.zeros(batch, size, dtype=torch.bool, device=device)
        if n <= 0 or max_width <= 0 or size == 0:
            return mask
        pos = torch.arange(size, device=device)
        width = torch.randint(0, min(max_width, size) + 1, (batch, n), device=device)
        start = (torch.rand(batch, n, device=device) * (size - width + 1)).long()
        for k in range(n):
            lo, hi = start[:, k : k + 1], (start + width)[:, k : k + 1]
            mask |= (pos >= lo) & (pos < hi)
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mask ``x`` ``[B, T, C*F]`` (a no-op in eval mode)."""
        if not self.training:
            return x
        b, t, d = x.shape
        if d % self.channels:
            raise ValueError(
                f"feature dim {d} is not a multiple of channels={self.channels}"
            )
        f = d // self.channels
        tmask = self._mask(b, t, self.n_time_masks, self.max_time_width, x.device)
        fmask = self._mask(b, f, self.n_freq_masks, self.max_freq_width, x.device)
        full = tmask[:, :, None, None] | fmask[:, None, None, :]
        x = x.view(b, t, self.channels, f).masked_fill(full, self.fill)
        return x.view(b, t, d)
