"""Synthetic speakers: eSpeak voice variant x English dialect x pitch/range/rate.

Speakers are drawn so that they really differ: within each split every
speaker has its own voice variant where the pool allows (a variant carries its
own formants and pitch base), test and dev speakers use variants that no
training speaker uses, and a variant used twice gets another dialect and a
pitch at least 20 points away. Speaking rates stay at 90-140 words per minute
so that CTC models at 10-20 output frames per second can align the
transcripts (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..extras import require_extra
from .espeak import Voice

__all__ = ["Speaker", "make_speakers", "VARIANTS", "DIALECTS", "available_variants"]

#: Voice variants that sound like a human talker (no echo robots, whisper,
#: croak; near-duplicates such as ``iven2``..``iven4`` left out).
VARIANTS = (
    "m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 Alex Alicia Andrea Andy Annie Denis "
    "Gene Jacky Lee Marco Mario Michael Mike Nguyen Reed Storm adam anika announcer "
    "antonio aunty belinda benjamin boris david ed edward gustave grandma grandpa "
    "iven kaukovalta klatt klatt2 klatt3 linda marcelo max michel mike2 norbert "
    "pablo paul pedro quincy rob robert sandro shelby steph travis victor john ian "
    "Tweaky"
).split()

#: English dialects of eSpeak-NG.
DIALECTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-us-nyc",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
)


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker: an id, its split and its eSpeak voice.

    Example
    -------
    >>> spk = Speaker("spk001", "train", Voice("en-us", "m3", 110, 40, 60))
    >>> spk.voice.name
    'en-us+m3'
    """

    spk_id: str
    split: str
    voice: Voice

    def to_dict(self) -> dict:
        """Plain dict for ``corpus.json``."""
        return {"spk_id": self.spk_id, "split": self.split, **asdict(self.voice)}


def available_variants() -> list[str]:
    """The variants of :data:`VARIANTS` present in the installed eSpeak data.

    Example
    -------
    >>> len(available_variants()) >= 48
    True
    """
    require_extra("corpus")
    import espeakng_loader

    folder = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
    return [v for v in VARIANTS if (folder / v).is_file()]


def make_speakers(
    num_train: int = 60,
    num_dev: int = 8,
    num_test: int = 16,
    seed: int = 0,
    rate_range: tuple[int, int] = (90, 130),
) -> list[Speaker]:
    """Draw speaker-disjoint train/dev/test speakers, deterministic per seed.

    Test and dev speakers get distinct voice variants that no training speaker
    uses; training speakers cycle through the remaining variants, each reuse
    with a new dialect and a pitch at least 20 points from earlier uses.

    Arguments
    ---------
    num_train, num_dev, num_test : int
        Speakers per split.
    seed : int
        Random seed.
    rate_range : (int, int)
        Speaking rates (words per minute) to draw from.

    Returns
    -------
    list of Speaker
        Ids ``spk000``, ``spk001``, ... (test first, then dev, then train).

    Example
    -------
    >>> spks = make_speakers(num_train=10, num_dev=2, num_test=4, seed=1)
    >>> [s.split for s in spks].count("test"), len({s.voice for s in spks})
    (4, 16)
    """
    variants = available_variants()
    held_out = num_dev + num_test
    if held_out >= len(variants):
        raise ValueError(
            f"{num_dev} dev + {num_test} test speakers need distinct voice variants, "
            f"but only {len(variants)} are available; lower num_dev/num_test"
        )
    if num_train < 1 or num_test < 1:
        raise ValueError("need at least one training and one test speaker")
    rng = np.random.default_rng(seed)
    order = [variants[i] for i in rng.permutation(len(variants))]
    test_v, dev_v, train_pool = (
        order[:num_test],
        order[num_test:held_out],
        order[held_out:],
    )
    lo, hi = rate_range
    if not (80 <= lo <= hi <= 450):
        raise ValueError(f"rate_range {rate_range} must lie within eSpeak's 80-450 wpm")

    used: dict[str, list[tuple[str, int]]] = {}

    def draw(variant: str) -> Voice:
        earlier = used.setdefault(variant, [])
        dialects = [d for d in DIALECTS if d not in {e[0] for e in earlier}] or list(
            DIALECTS
        )
        dialect = dialects[int(rng.integers(len(dialects)))]
        for _ in range(100):
            pitch = int(rng.integers(15, 86))
            if all(abs(pitch - p) >= 20 for _, p in earlier):
                break
        earlier.append((dialect, pitch))
        return Voice(
            language=dialect,
            variant=variant,
            rate=int(rng.integers(lo, hi + 1)),
            pitch=pitch,
            pitch_range=int(rng.integers(20, 91)),
        )

    speakers = []
    plan = (
        [("test", v) for v in test_v]
        + [("dev", v) for v in dev_v]
        + [("train", train_pool[i % len(train_pool)]) for i in range(num_train)]
    )
    width = max(3, len(str(len(plan))))
    for index, (split, variant) in enumerate(plan):
        speakers.append(Speaker(f"spk{index:0{width}d}", split, draw(variant)))
    return speakers
