"""A study of probes trained on the HiFi-GAN mel: HiFi-GAN makes its audio.

A tiny frozen ASR (tests/test_probe.py's), probes trained one epoch on
``target_mel: hifigan`` and a hand-written corpus of six 0.7 s utterances of
three "speakers": the study runs end to end in this process (``n_jobs=1``).
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_probe.data.audio import write_wav
from speechbrain_probe.data.manifest import write_manifest
from speechbrain_probe.evaluation import ModelSpec, run_study
from speechbrain_probe.evaluation.pool import (
    finish_wav,
    synthesize_to_file,
    vocoder_spec,
)
from speechbrain_probe.features import HIFIGAN_MEL, LogMelSpectrogram, MelConfig
from speechbrain_probe.hifigan import HifiGanUniversalVocoder
from speechbrain_probe.probe.target import to_target_rate
from speechbrain_probe.report import build_report
from speechbrain_probe.result_rows import read_samples
from speechbrain_probe.study_info import read_study_info
from speechbrain_probe.vocoder import GriffinLimVocoder
from tests.test_probe import loader, make_asr, make_brain, make_data

SECONDS = 0.7


def _corpus(folder: Path) -> Path:
    """test.csv of 3 speakers x 2 utterances (voiced tones, one f0 per speaker)."""
    gen = torch.Generator().manual_seed(1)
    rows = []
    for s in range(3):
        for u in range(2):
            n = int(16000 * SECONDS) + 37 * (s + u)  # odd lengths
            t = torch.arange(n) / 16000
            f0 = 110 + 60 * s + 7 * u
            wav = sum(
                0.15 / k * torch.sin(2 * math.pi * k * f0 * t) for k in range(1, 6)
            ) * torch.sin(math.pi * t / SECONDS).clamp(min=0)
            wav = wav + 0.005 * torch.randn(n, generator=gen)
            path = write_wav(folder / f"s{s}_u{u}.wav", wav.numpy())
            rows.append(dict(ID=f"s{s}_u{u}", spk_id=f"s{s}", wav=str(path), wrd="a"))
    write_manifest(folder / "test.csv", rows, fields=("ID", "spk_id", "wav", "wrd"))
    return folder


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Corpus, the tiny ASR, probes of the HiFi-GAN mel and of the paper mel."""
    root = tmp_path_factory.mktemp("hifigan_study")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        corpus = _corpus(root / "corpus")
        asr = make_asr()
        data = make_data(3)
        for target, layers in (("hifigan", ["cnn", "blstm2"]), (None, ["cnn"])):
            folder = root / f"probes_{target or 'paper'}"
            kwargs = {"target_mel": target} if target else {}
            brain, counter = make_brain(asr, layers, folder, epochs=1, **kwargs)
            brain.fit(counter, loader(data), loader(data))
    finally:
        torch.set_num_threads(threads)
    return root, corpus, asr


def _study(inputs, out, probes=("hifigan",)):
    root, corpus, asr = inputs
    models = [ModelSpec(f"tiny_{p}", "", str(root / f"probes_{p}")) for p in probes]
    return run_study(
        corpus,
        out,
        models,
        conditions=["clean"],
        utts_per_speaker=2,
        n_boot=10,
        n_jobs=1,
        device="cpu",
        griffin_lim_iters=4,
        asrs={m.name: asr for m in models},
    )


def test_hifigan_probes_are_heard_through_hifigan_at_the_inputs_rate(inputs, tmp_path):
    _, corpus, _ = inputs
    out = _study(inputs, tmp_path / "study")

    # every sample: 16 kHz and exactly as long as its input
    rows = read_samples(out / "samples.csv")
    assert {r.kind for r in rows} == {"original", "copy_synthesis", "reconstruction"}
    assert {r.layer for r in rows if r.kind == "reconstruction"} == {"cnn", "blstm2"}
    for r in rows:
        info = sf.info(str(r.file))
        source = sf.info(str(corpus / f"{r.utt_id}.wav"))
        assert (info.samplerate, info.frames) == (16000, source.frames), r.path

    # copy synthesis is HiFi-GAN's on the HiFi-GAN mel of the input at 22,050 Hz
    utt = "s1_u1"
    heard, _ = sf.read(str(corpus / f"{utt}.wav"), dtype="float32")
    audio = torch.from_numpy(heard).unsqueeze(0)
    vocoder = HifiGanUniversalVocoder(device="cpu")
    mel = LogMelSpectrogram(HIFIGAN_MEL)(to_target_rate(audio, 16000, HIFIGAN_MEL))
    (wav,) = vocoder.synthesize(mel)
    expected = finish_wav(wav, 22050, 16000, len(heard))
    copy_path = out / "samples" / "clean" / "copy_synthesis" / f"{utt}.wav"
    written, rate = sf.read(str(copy_path), dtype="float32")
    assert rate == 16000
    assert np.abs(written - np.clip(expected, -1, 1)).max() < 1e-4
    # ... which is not Griffin-Lim's copy synthesis of the same input
    (gl,) = GriffinLimVocoder(n_iter=4, device="cpu").synthesize(
        LogMelSpectrogram(MelConfig())(audio)
    )
    gl = finish_wav(gl, 16000, 16000, len(heard))
    assert np.abs(written - gl).mean() > 10 * np.abs(written - expected).mean()
    # a worker process rebuilds HiFi-GAN from its spec and writes the same file
    twin = synthesize_to_file(
        vocoder_spec(vocoder),
        mel[0].numpy(),
        str(tmp_path / "twin.wav"),
        len(heard),
        16000,
    )
    assert Path(twin).read_bytes() == copy_path.read_bytes()

    # the vocoder is recorded: cells' settings, study.json, the report's note
    settings = json.loads((out / "cells" / "settings.json").read_text())
    assert settings["vocoder"] == "hifigan" and settings["griffin_lim_iters"] is None
    assert read_study_info(out / "study.json").vocoder == "hifigan"
    metrics = (out / "metrics.csv").read_text()
    assert "tiny_hifigan,,,blstm2,clean,eer_ge2e" in metrics
    page = build_report(out, verbose=False).read_text()
    assert "made by the universal HiFi-GAN" in page

    # resuming this study with probes of the paper mel (Griffin-Lim) is refused
    with pytest.raises(ValueError, match="vocoder: hifigan -> griffin_lim"):
        _study(inputs, out, probes=("paper",))


def test_one_study_refuses_probes_of_two_targets(inputs, tmp_path):
    with pytest.raises(ValueError, match="one vocoder: evaluate them in separate"):
        _study(inputs, tmp_path / "mixed", probes=("hifigan", "paper"))
    # nothing was synthesised or scored
    assert not (tmp_path / "mixed" / "samples").exists()
    assert not (tmp_path / "mixed" / "cells").exists()
