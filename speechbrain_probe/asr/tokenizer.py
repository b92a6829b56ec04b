"""Subword units for CTC: SentencePiece on the training transcripts, and the
check of which utterances CTC can align at all.

CTC emits at most one token per output frame and needs a blank between two
equal consecutive tokens, so a transcript of ``n`` tokens with ``r`` adjacent
repeats needs at least ``n + r`` output frames (:func:`ctc_min_frames`).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "train_tokenizer",
    "ctc_min_frames",
    "find_unalignable",
]

logger = logging.getLogger(__name__)


def _read_transcripts(csv_path: str, column: str) -> list[str]:
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise ValueError(
                f"{csv_path} has no {column!r} column (columns: {reader.fieldnames}); "
                "the manifest must be a SpeechBrain CSV ID,duration,wav,spk_id,wrd"
            )
        return [row[column] for row in reader]


def train_tokenizer(
    train_csv: str,
    out_dir: str,
    vocab_size: int,
    model_type: str = "unigram",
    column: str = "wrd",
):
    """Train (or reload) a SentencePiece model on the transcripts of a manifest.

    Token id 0 is SentencePiece's ``<unk>``, which the CTC models use as the
    blank (``character_coverage=1.0`` keeps ``<unk>`` out of training targets).

    Arguments
    ---------
    train_csv : str
        SpeechBrain CSV with a ``wrd`` column.
    out_dir : str
        Where ``<vocab>_<type>.model`` is written (reused if present).
    vocab_size : int
        Units, blank (``<unk>``) included; lowered to the largest the text
        supports when SentencePiece refuses it.
    model_type : str
        ``unigram``, ``bpe`` or ``char``.
    column : str
        Transcript column.

    Returns
    -------
    speechbrain.tokenizers.SentencePiece.SentencePiece
        Its ``.sp`` is the ``SentencePieceProcessor``.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> csv_path = tmp / "train.csv"
    >>> rows = ["ID,duration,wav,spk_id,wrd"] + [
    ...     f"u{i},1.0,x.wav,s,THE CAT NUMBER {w} SAT ON THE MAT"
    ...     for i, w in enumerate(["ONE", "TWO", "THREE", "FOUR", "FIVE"])]
    >>> _ = csv_path.write_text("\\n".join(rows) + "\\n")
    >>> tok = train_tokenizer(str(csv_path), str(tmp / "tok"), vocab_size=20)
    >>> tok.sp.decode_ids(tok.sp.encode_as_ids("THE CAT SAT"))
    'THE CAT SAT'
    """
    from speechbrain.tokenizers.SentencePiece import SentencePiece

    if not os.path.isfile(train_csv):
        raise FileNotFoundError(
            f"training manifest {train_csv} not found; prepare the corpus first"
        )
    texts = _read_transcripts(train_csv, column)
    if not any(t.strip() for t in texts):
        raise ValueError(f"{train_csv} has no non-empty transcripts to train on")
    os.makedirs(out_dir, exist_ok=True)

    def build(size):
        return SentencePiece(
            model_dir=out_dir,
            vocab_size=int(size),
            annotation_train=train_csv,
            annotation_read=column,
            model_type=model_type,
            character_coverage=1.0,
            annotation_format="csv",
        )

    try:
        return build(vocab_size)
    except RuntimeError as err:
        # SentencePiece refuses a vocabulary larger than the text supports and
        # says how large it may be: use that size rather than fail.
        found = re.search(r"value <= (\d+)", str(err))
        if not found:
            raise
        limit = int(found.group(1))
        logger.warning(
            "vocab_size %s is too large for %s; SentencePiece allows at most %d, "
            "using that",
            vocab_size,
            train_csv,
            limit,
        )
        return build(limit)


def ctc_min_frames(tokens: Sequence[int]) -> int:
    """Output frames CTC needs for ``tokens``: their count plus adjacent repeats.

    Example
    -------
    >>> ctc_min_frames([5, 7, 7, 7, 2])
    7
    """
    repeats = sum(1 for a, b in zip(tokens[:-1], tokens[1:]) if a == b)
    return len(tokens) + repeats


def find_unalignable(
    items: Iterable[tuple[str, int, Sequence[int]]],
) -> list[tuple[str, int, int]]:
    """Utterances whose output frames cannot hold their CTC transcript.

    Arguments
    ---------
    items : iterable of (utt_id, output_frames, tokens)

    Returns
    -------
    list of (utt_id, output_frames, needed_frames)

    Example
    -------
    >>> find_unalignable([("a", 10, [1, 2, 3]), ("b", 3, [4, 4, 5])])
    [('b', 3, 4)]
    """
    bad = []
    for utt_id, frames, tokens in items:
        need = ctc_min_frames(list(tokens))
        if frames < need or len(tokens) == 0:
            bad.append((utt_id, int(frames), int(need)))
    return bad
