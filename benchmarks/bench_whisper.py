#!/usr/bin/env python3
"""Cost of Whisper hidden states per second of audio: full 30-s windows vs trimmed.

A random Whisper encoder (whisper-tiny dimensions by default: d_model 384,
4 layers, 6 heads; ``--size base``: 512, 6, 8) is built from a config here (no
download) and saved to a temporary folder. For each utterance length, three
ways of getting every layer's hidden states run interleaved on the same batch
(so load changes on a shared machine hit all alike), and the medians are
compared:

* before: the old path, each window of the batch encoded in its own forward,
  every window padded to 30 s (``HFEncoderASR`` before ``whisper_window``);
* full: ``whisper_window="full"`` (the default): still padded to 30 s, all
  windows of the batch in one forward;
* trim: ``whisper_window="trim"``: a window shorter than 30 s encoded only as
  long as the audio needs.

It also times the feature extractor alone (log-mel of the batch) and reports
how much trimming changes the hidden states: cosine similarity of each layer's
frames, full vs trim, over the speech frames. The weights are random, so this
similarity says how much attention to the padding matters for *this* network,
not for a trained Whisper.

    python benchmarks/bench_whisper.py                  # 10-s and 40-s utterances
    python benchmarks/bench_whisper.py --size base --seconds 10 --batch 8
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

SIZES = {
    "tiny": dict(d_model=384, encoder_layers=4, encoder_attention_heads=6),
    "base": dict(d_model=512, encoder_layers=6, encoder_attention_heads=8),
}


def make_whisper(folder: Path, size: str) -> Path:
    import transformers

    dims = SIZES[size]
    config = transformers.WhisperConfig(
        **dims,
        encoder_ffn_dim=4 * dims["d_model"],
        decoder_layers=1,
        decoder_attention_heads=dims["encoder_attention_heads"],
        decoder_ffn_dim=4 * dims["d_model"],
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=448,
    )
    torch.manual_seed(0)
    transformers.WhisperModel(config).save_pretrained(folder)
    transformers.WhisperFeatureExtractor(feature_size=80).save_pretrained(folder)
    return folder


def before(asr, wavs, lens, names):
    """The old path: window after window, each padded to the full window."""
    window = asr._window_samples()
    lengths = torch.round(lens * wavs.shape[1]).long()
    pieces = {n: [] for n in names}
    for start in range(0, wavs.shape[1], window):
        chunk = wavs[:, start : start + window]
        chunk_len = (lengths - start).clamp(min=1, max=chunk.shape[1])
        part = asr.hidden_states(chunk, chunk_len.float() / chunk.shape[1], names)
        for n in names:
            pieces[n].append(part[n])
    return {n: torch.cat(pieces[n], dim=1) for n in names}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=list(SIZES))
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 40.0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads (0: default)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from speechbrain_probe.frozen.hf_encoder import HFEncoderASR

    with tempfile.TemporaryDirectory() as tmp:
        folder = make_whisper(Path(tmp) / "whisper", args.size)
        full = HFEncoderASR(folder, whisper_window="full").to(args.device)
        trim = HFEncoderASR(folder, whisper_window="trim").to(args.device)
    names = list(full.layers)
    dims = SIZES[args.size]
    print(
        f"# random Whisper ({args.size}: d_model {dims['d_model']}, "
        f"{dims['encoder_layers']} layers, {dims['encoder_attention_heads']} heads), "
        f"batch {args.batch}, every layer ({' '.join(names)}), device {args.device}, "
        f"{torch.get_num_threads()} torch threads, median of {args.reps}"
    )
    gen = torch.Generator().manual_seed(0)
    for seconds in args.seconds:
        n = int(seconds * 16000)
        # speech-like level; the last utterance 3/4 as long (padding in the batch)
        wavs = 0.1 * torch.randn(args.batch, n, generator=gen)
        lens = torch.ones(args.batch)
        lens[-1] = 0.75
        wavs = wavs.to(args.device)
        audio_s = float(lens.sum()) * seconds
        arrays = [
            w[: int(round(float(x) * n))].cpu().numpy() for w, x in zip(wavs, lens)
        ]
        window = full._window_samples()
        chunks = [a[s : s + window] for a in arrays for s in range(0, len(a), window)]
        runs = {
            "before": lambda w=wavs, x=lens: before(full, w, x, names),
            "full": lambda w=wavs, x=lens: full.hidden_states(w, x, names),
            "trim": lambda w=wavs, x=lens: trim.hidden_states(w, x, names),
            "features": lambda c=chunks, m=window: full._whisper_features(c, m),
        }
        for fn in runs.values():  # warm-up
            fn()
        times = {k: [] for k in runs}
        for _ in range(args.reps):
            for key, fn in runs.items():
                times[key].append(timed(fn))
        med = {k: statistics.median(v) for k, v in times.items()}
        per_s = {k: 1000 * v / audio_s for k, v in med.items()}
        print(
            f"{seconds:g}-s utterances ({audio_s:g} s of audio per batch): ms per "
            f"second of audio: before {per_s['before']:.1f}, full {per_s['full']:.1f}, "
            f"trim {per_s['trim']:.1f}; before/full {med['before'] / med['full']:.2f}x, "
            f"before/trim {med['before'] / med['trim']:.2f}x; feature extraction "
            f"{per_s['features']:.1f} ms/s ({100 * med['features'] / med['full']:.0f}% "
            "of full)"
        )
        a = runs["full"]()
        b = runs["trim"]()
        frames = (torch.round(lens * n).long() // 160 + 1) // 2
        sims = []
        for name in names:
            per_utt = [
                torch.nn.functional.cosine_similarity(
                    a[name][i, : frames[i]], b[name][i, : frames[i]], dim=-1
                ).mean()
                for i in range(args.batch)
            ]
            sims.append(f"{name} {float(torch.stack(per_utt).mean()):.3f}")
        print(
            "   cosine similarity full vs trim over speech frames (random weights): "
            + ", ".join(sims)
        )


if __name__ == "__main__":
    main()
