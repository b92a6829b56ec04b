"""Trained probes at work: load them from a checkpoint, reconstruct mels.

:func:`load_trained_probes` rebuilds the probes a
:class:`~speechbrain_probe.probe.brain.ProbeBrain` saved, after checking the
checkpoint's :class:`~speechbrain_probe.probe.identity.ProbeIdentity` against
the ASR (and target mel) they are for; :func:`reconstruct_mel` runs one ASR
forward and every probe on a batch of audio.
"""

from __future__ import annotations

import torch
from torch import nn

from speechbrain_probe.features import MelConfig
from speechbrain_probe.probe.identity import ProbeIdentity, stored_identity
from speechbrain_probe.probe.model import aligner_for, build_probes
from speechbrain_probe.probe.target import resolve_target_mel, target_num_frames

__all__ = ["load_trained_probes", "reconstruct_mel"]


def load_trained_probes(
    checkpoint_dir, asr, layers=None, device="cpu", target_mel=None
) -> nn.ModuleDict:
    """Load probes from a ``ProbeBrain`` checkpoint folder, checking its identity.

    Arguments
    ---------
    checkpoint_dir : str or path
        The ``CKPT+...`` folder, or the save folder holding them (the best by
        validation loss is used).
    asr : FrozenASR
        The ASR they must belong to.
    layers : list of str, optional
        Default: every layer of the checkpoint.
    device : str
        Where to put the probes.
    target_mel : str, MelConfig or dict, optional
        The target mel the probes must have been trained on (a mismatch is a
        :class:`~speechbrain_probe.probe.identity.ProbeMismatchError`);
        default: whichever they were.

    Returns
    -------
    torch.nn.ModuleDict
        Layer -> probe, in eval mode; its ``target_mel`` attribute is the
        :class:`MelConfig` they predict (what :func:`reconstruct_mel` returns
        and the vocoder must take).
    """
    folder, stored = stored_identity(checkpoint_dir)
    trained_on = MelConfig.from_dict(stored["mel_config"])
    wanted = trained_on if target_mel is None else resolve_target_mel(target_mel, asr)
    ProbeIdentity(asr, list(stored["layers"]), target_mel=wanted).check(
        stored, where=str(folder)
    )
    layers = list(stored["layers"]) if layers is None else asr.check_layers(layers)
    kwargs = {
        k: v for k, v in stored.get("probe_kwargs", {}).items() if k == "n_highway"
    }
    probes = build_probes(asr, list(stored["layers"]), target_mel=trained_on, **kwargs)
    probes.load_state_dict(torch.load(folder / "probes.ckpt", map_location="cpu"))
    keep = nn.ModuleDict({n: probes[n] for n in layers})
    keep.target_mel = trained_on
    return keep.to(device).eval()


@torch.no_grad()
def reconstruct_mel(
    asr, probes, wavs, wav_lens, layers=None, target_mel=None
) -> dict[str, torch.Tensor]:
    """Each probe's mel prediction ``[B, T_mel, n_mels]`` for a batch of audio.

    The mel is the probes' target mel: ``target_mel``, else the
    ``target_mel`` attribute of ``probes`` (set by :func:`load_trained_probes`
    and :func:`~speechbrain_probe.probe.model.build_probes`), else the ASR's
    own. ``T_mel`` is the frame count of that mel of ``wavs`` (at the ASR's
    rate) resampled to its rate, so the result feeds the matching vocoder
    directly (values are clipped to [0, 1], the range of the normalised mel).
    One ASR forward serves every layer.

    Example
    -------
    >>> from speechbrain_probe.frozen.interface import ModuleASR
    >>> asr = ModuleASR(nn.Sequential(nn.Unflatten(1, (1, -1)), nn.Conv1d(1, 4, 400, 400)),
    ...     {"c": "1"}, takes_lengths=False)
    >>> mels = reconstruct_mel(asr, build_probes(asr, ["c"]), torch.randn(2, 8000), torch.ones(2))
    >>> mels["c"].shape
    torch.Size([2, 41, 80])
    >>> hifigan = build_probes(asr, ["c"], target_mel="hifigan")
    >>> reconstruct_mel(asr, hifigan, torch.randn(2, 8000), torch.ones(2))["c"].shape  # 1 + 11025 // 256
    torch.Size([2, 44, 80])
    """
    layers = list(probes) if layers is None else asr.check_layers(layers)
    if target_mel is None:
        target_mel = getattr(probes, "target_mel", None)
    target = resolve_target_mel(target_mel, asr)
    num_target = target_num_frames(wavs.shape[-1], asr.mel_config.sample_rate, target)
    states = asr.hidden_states(wavs, wav_lens, layers)
    out = {}
    for name in layers:
        probe = probes[name]
        aligner = aligner_for(asr, name, probe, target)
        pred = probe.eval()(states[name].to(next(probe.parameters()).device))
        out[name] = aligner(pred, num_target).clamp(0, 1)
    return out
