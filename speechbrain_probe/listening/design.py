"""Balanced, randomised ABX triplet design across layers.

A trial plays utterance A of one speaker, utterance B of another, then X: a
*different* utterance of one of the two. The rater says whose X is. The human
error rate of a layer is the share of wrong answers on its trials.

How the design is balanced, for each (model, condition) group of ``L`` layers
and ``n`` trials per layer:

* ``L`` blocks of ``n`` triplet templates (speaker pair, utterances of A, B and
  X, which side X belongs to) are drawn once from the global seed, from
  utterances that exist in every layer of the group; speaker pairs are cycled so
  each pair and speaker recurs about equally, and within a block X is on A's
  side for half of the trials (a random half when ``n`` is odd).
* Rater number ``r`` hears block ``j`` through layer ``(j + r) mod L`` (a Latin
  square): every rater gets ``n`` trials per layer, and over ``L`` consecutive
  raters every block is heard through every layer, so layers differ only by the
  layer, not by the triplets chosen for them.
* Each rater's trials are shuffled by a seed derived from the rater id.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from dataclasses import dataclass

from speechbrain_probe.vocabulary import layer_sort_key

from .registry import Registry, Stimulus

__all__ = ["Trial", "TripletDesign"]


@dataclass(frozen=True)
class Trial:
    """One ABX triplet; ``key`` is ``"A"`` or ``"B"``, the side X belongs to.

    Example
    -------
    >>> a = Stimulus("u1", "s1", "m", "cnn1", "clean", "/a")
    >>> b = Stimulus("u2", "s2", "m", "cnn1", "clean", "/b")
    >>> x = Stimulus("u3", "s2", "m", "cnn1", "clean", "/x")
    >>> Trial(a, b, x, "B").layer
    'cnn1'
    """

    a: Stimulus
    b: Stimulus
    x: Stimulus
    key: str

    def __post_init__(self):
        if self.key not in ("A", "B"):
            raise ValueError(f"trial key must be 'A' or 'B', got {self.key!r}")
        same = self.a if self.key == "A" else self.b
        other = self.b if self.key == "A" else self.a
        if same.speaker != self.x.speaker or other.speaker == self.x.speaker:
            raise ValueError("X must share its speaker with exactly one of A and B")
        if self.x.utt_id in (self.a.utt_id, self.b.utt_id):
            raise ValueError("X must be a different utterance from A and B")

    @property
    def layer(self) -> str:
        return self.x.layer


def _rng(*parts) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class TripletDesign:
    """Trials of every rater, balanced across layers (see the module docstring).

    Parameters
    ----------
    registry : Registry
        The stimuli.
    trials_per_layer : int
        Trials of one rater for each (model, condition, layer) cell.
    seed : int
        Fixes the triplet templates (the same for every rater).

    Example
    -------
    >>> stims = [Stimulus(f"u{u}", f"s{s}", "m", layer, "clean", f"/{layer}/{s}/{u}")
    ...          for layer in ("cnn1", "blstm1") for s in range(3) for u in range(s * 9, s * 9 + 3)]
    >>> design = TripletDesign(Registry(stims), trials_per_layer=4, seed=1)
    >>> trials = design.trials_for(rater_index=0, rater_id="alice")
    >>> len(trials), sorted({t.layer for t in trials})
    (8, ['blstm1', 'cnn1'])
    >>> [sum(t.key == "A" for t in trials if t.layer == "cnn1")]
    [2]
    """

    def __init__(self, registry: Registry, trials_per_layer: int = 4, seed: int = 0):
        if trials_per_layer < 1:
            raise ValueError(f"trials_per_layer must be >= 1, got {trials_per_layer}")
        self.registry = registry
        self.trials_per_layer = int(trials_per_layer)
        self.seed = int(seed)
        self.groups: dict[tuple[str, str], list[str]] = {}
        for model, condition, layer in registry.cells():
            self.groups.setdefault((model, condition), []).append(layer)
        for layers in self.groups.values():
            layers.sort(key=layer_sort_key)
        self._blocks = {g: self._make_blocks(g) for g in self.groups}

    @property
    def trials_per_rater(self) -> int:
        return self.trials_per_layer * sum(len(v) for v in self.groups.values())

    def _common_pool(self, group) -> dict[str, list[str]]:
        """Speaker -> utterance ids present in every layer of the group."""
        model, condition = group
        pool = None
        for layer in self.groups[group]:
            cell = self.registry.by_cell((model, condition, layer))
            here = {spk: set(utts) for spk, utts in cell.items()}
            if pool is None:
                pool = here
            else:
                pool = {s: pool[s] & here[s] for s in pool.keys() & here.keys()}
        pool = {s: sorted(u) for s, u in (pool or {}).items() if len(u) >= 2}
        if len(pool) < 2:
            raise ValueError(
                f"model {model!r} condition {condition!r}: a triplet needs at least 2 "
                "speakers with at least 2 utterances each that exist in every layer "
                f"({', '.join(self.groups[group])}); found {len(pool)} such speakers. "
                "Add reconstructions of the same utterances for every layer, or filter "
                "layers with --layers."
            )
        return pool

    def _make_blocks(self, group):
        """``L`` blocks of ``n`` templates ``(spk_a, utt_a, spk_b, utt_b, utt_x, key)``."""
        rng = _rng(self.seed, "templates", *group)
        pool = self._common_pool(group)
        speakers = sorted(pool)
        pairs = list(itertools.combinations(speakers, 2))
        rng.shuffle(pairs)
        pair_cycle = itertools.cycle(pairs)
        utt_cycles = {}
        for spk in speakers:
            utts = list(pool[spk])
            rng.shuffle(utts)
            utt_cycles[spk] = itertools.cycle(utts)
        n_layers, n = len(self.groups[group]), self.trials_per_layer
        blocks = []
        for _ in range(n_layers):
            keys = ["A", "B"] * (n // 2) + ([rng.choice("AB")] if n % 2 else [])
            rng.shuffle(keys)
            block = []
            for key in keys:
                spk_a, spk_b = next(pair_cycle)
                if rng.random() < 0.5:
                    spk_a, spk_b = spk_b, spk_a
                utt_a, utt_b = next(utt_cycles[spk_a]), next(utt_cycles[spk_b])
                x_spk, shown = (spk_a, utt_a) if key == "A" else (spk_b, utt_b)
                utt_x = next(utt_cycles[x_spk])
                if utt_x == shown:  # cycles of >= 2 utterances: the next one differs
                    utt_x = next(utt_cycles[x_spk])
                block.append((spk_a, utt_a, spk_b, utt_b, utt_x, key))
            blocks.append(block)
        return blocks

    def trials_for(self, rater_index: int, rater_id: str) -> list[Trial]:
        """All trials of rater number ``rater_index`` (0, 1, ...), in playing order."""
        trials = []
        for group, layers in self.groups.items():
            model, condition = group
            cells = {
                layer: self.registry.by_cell((model, condition, layer))
                for layer in layers
            }
            for j, block in enumerate(self._blocks[group]):
                layer = layers[(j + rater_index) % len(layers)]
                cell = cells[layer]
                for spk_a, utt_a, spk_b, utt_b, utt_x, key in block:
                    x_spk = spk_a if key == "A" else spk_b
                    trials.append(
                        Trial(
                            a=cell[spk_a][utt_a],
                            b=cell[spk_b][utt_b],
                            x=cell[x_spk][utt_x],
                            key=key,
                        )
                    )
        _rng(self.seed, "order", rater_id).shuffle(trials)
        return trials
