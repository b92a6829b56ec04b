"""SQLite store of raters, their trials and their answers.

One transaction per write, WAL journal and ``synchronous=FULL``: an answer the
server has acknowledged is on disk, so a killed server loses none. The answer
table's primary key is the trial id, so a trial can be answered once; a replayed
or duplicate answer is refused by the database itself, not only by the app.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from .design import TripletDesign

__all__ = [
    "Store",
    "AlreadyAnswered",
    "UnknownTrial",
    "RaterExists",
    "TooManyRaters",
    "hash_token",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS raters (
    rater_id TEXT PRIMARY KEY,
    rater_index INTEGER NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    trial_id TEXT PRIMARY KEY,
    rater_id TEXT NOT NULL REFERENCES raters(rater_id),
    seq INTEGER NOT NULL,
    model TEXT NOT NULL,
    condition TEXT NOT NULL,
    layer TEXT NOT NULL,
    a_path TEXT NOT NULL,
    b_path TEXT NOT NULL,
    x_path TEXT NOT NULL,
    a_speaker TEXT NOT NULL,
    b_speaker TEXT NOT NULL,
    x_utt TEXT NOT NULL,
    key TEXT NOT NULL CHECK (key IN ('A', 'B')),
    UNIQUE (rater_id, seq)
);
CREATE TABLE IF NOT EXISTS answers (
    trial_id TEXT PRIMARY KEY REFERENCES trials(trial_id),
    rater_id TEXT NOT NULL REFERENCES raters(rater_id),
    answer TEXT NOT NULL CHECK (answer IN ('A', 'B')),
    correct INTEGER NOT NULL CHECK (correct IN (0, 1)),
    response_ms INTEGER,
    answered_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS answers_rater ON answers(rater_id);
"""


class UnknownTrial(LookupError):
    """The trial does not exist or belongs to another rater."""


class AlreadyAnswered(Exception):
    """The trial has an answer already."""


class RaterExists(Exception):
    """The rater id is taken."""


class TooManyRaters(Exception):
    """The test has as many raters as it accepts."""


def hash_token(token: str) -> str:
    """SHA-256 of a session token: the database never holds the token itself.

    Example
    -------
    >>> len(hash_token("abc"))
    64
    """
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """The listening test's database; safe to share between threads.

    Each thread gets its own connection; every write is one ``BEGIN IMMEDIATE``
    transaction.

    Parameters
    ----------
    path : path
        The SQLite file (created with its schema when absent).

    Example
    -------
    >>> from speechbrain_probe.listening.registry import Registry, Stimulus
    >>> stims = [Stimulus(f"u{u}", f"s{s}", "m", "cnn1", "clean", f"/{s}/{u}")
    ...          for s in range(2) for u in range(s * 5, s * 5 + 2)]
    >>> design = TripletDesign(Registry(stims), trials_per_layer=2)
    >>> store = Store(getfixture("tmp_path") / "t.sqlite")
    >>> token = store.create_rater("alice", design)
    >>> trial = store.next_trial("alice")
    >>> store.answer("alice", trial["trial_id"], "A", response_ms=900)["done"]
    1
    >>> store.answer("alice", trial["trial_id"], "B")
    Traceback (most recent call last):
    ...
    speechbrain_probe.listening.store.AlreadyAnswered: trial ... has been answered already
    """

    def __init__(self, path: str | os.PathLike, busy_timeout_s: float = 30.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        conn = self._conn()
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _write(self, fn):
        """Run ``fn(conn)`` inside one immediate transaction."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    # -- meta ---------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = (
            self._conn()
            .execute("SELECT value FROM meta WHERE key=?", (key,))
            .fetchone()
        )
        return None if row is None else row["value"]

    def set_meta_once(self, key: str, value: str) -> str:
        """Store ``value`` under ``key`` unless set; return the stored value."""

        def fn(conn):
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, value)
            )
            return conn.execute(
                "SELECT value FROM meta WHERE key=?", (key,)
            ).fetchone()[0]

        return self._write(fn)

    # -- raters -------------------------------------------------------------
    def create_rater(
        self, rater_id: str, design: TripletDesign, max_raters: int | None = None
    ) -> str:
        """Register a rater with all their trials; return their secret session token.

        Raises :class:`RaterExists` for a taken id and :class:`TooManyRaters` once
        ``max_raters`` are registered.
        """
        token = secrets.token_urlsafe(24)

        def fn(conn):
            if conn.execute(
                "SELECT 1 FROM raters WHERE rater_id=?", (rater_id,)
            ).fetchone():
                raise RaterExists(f"rater id {rater_id!r} is taken")
            index = conn.execute("SELECT COUNT(*) FROM raters").fetchone()[0]
            if max_raters is not None and index >= max_raters:
                raise TooManyRaters(
                    f"the test accepts {max_raters} raters and has them"
                )
            conn.execute(
                "INSERT INTO raters(rater_id, rater_index, token_hash, created) "
                "VALUES (?, ?, ?, ?)",
                (rater_id, index, hash_token(token), time.time()),
            )
            rows = [
                (
                    secrets.token_urlsafe(12),
                    rater_id,
                    seq,
                    t.model,
                    t.condition,
                    t.layer,
                    t.a.path,
                    t.b.path,
                    t.x.path,
                    t.a.speaker,
                    t.b.speaker,
                    t.x.utt_id,
                    t.key,
                )
                for seq, t in enumerate(design.trials_for(index, rater_id))
            ]
            conn.executemany(
                "INSERT INTO trials(trial_id, rater_id, seq, model, condition, layer, "
                "a_path, b_path, x_path, a_speaker, b_speaker, x_utt, key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return token

        return self._write(fn)

    def rater_for_token(self, token: str) -> str | None:
        """The rater id of a session token, or None."""
        row = (
            self._conn()
            .execute(
                "SELECT rater_id FROM raters WHERE token_hash=?", (hash_token(token),)
            )
            .fetchone()
        )
        return None if row is None else row["rater_id"]

    def progress(self, rater_id: str) -> dict:
        """``{"done": answered trials, "total": trials}`` of one rater."""
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(t.trial_id) AS total, COUNT(a.trial_id) AS done "
                "FROM trials t LEFT JOIN answers a ON a.trial_id = t.trial_id "
                "WHERE t.rater_id=?",
                (rater_id,),
            )
            .fetchone()
        )
        return {"done": row["done"], "total": row["total"]}

    # -- trials and answers -------------------------------------------------
    def next_trial(self, rater_id: str) -> dict | None:
        """The rater's first unanswered trial (id and seq only), or None when done."""
        row = (
            self._conn()
            .execute(
                "SELECT t.trial_id, t.seq FROM trials t "
                "LEFT JOIN answers a ON a.trial_id = t.trial_id "
                "WHERE t.rater_id=? AND a.trial_id IS NULL ORDER BY t.seq LIMIT 1",
                (rater_id,),
            )
            .fetchone()
        )
        return None if row is None else dict(row)

    def trial_audio_path(self, rater_id: str, trial_id: str, slot: str) -> str:
        """The file behind slot ``A``, ``B`` or ``X`` of one of the rater's trials."""
        column = {"A": "a_path", "B": "b_path", "X": "x_path"}[slot]
        row = (
            self._conn()
            .execute(
                f"SELECT {column} FROM trials WHERE trial_id=? AND rater_id=?",
                (trial_id, rater_id),
            )
            .fetchone()
        )
        if row is None:
            raise UnknownTrial(f"no trial {trial_id!r} for this rater")
        return row[0]

    def answer(
        self, rater_id: str, trial_id: str, answer: str, response_ms: int | None = None
    ) -> dict:
        """Store one answer in its own transaction; return the rater's progress."""
        if answer not in ("A", "B"):
            raise ValueError(f"answer must be 'A' or 'B', got {answer!r}")

        def fn(conn):
            row = conn.execute(
                "SELECT key FROM trials WHERE trial_id=? AND rater_id=?",
                (trial_id, rater_id),
            ).fetchone()
            if row is None:
                raise UnknownTrial(f"no trial {trial_id!r} for this rater")
            try:
                conn.execute(
                    "INSERT INTO answers(trial_id, rater_id, answer, correct, response_ms, "
                    "answered_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        trial_id,
                        rater_id,
                        answer,
                        int(answer == row["key"]),
                        response_ms,
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError as err:
                raise AlreadyAnswered(
                    f"trial {trial_id!r} has been answered already"
                ) from err

        self._write(fn)
        return self.progress(rater_id)

    def answered_cells(self) -> list[dict]:
        """Every answer with its cell and correctness (for the results)."""
        rows = self._conn().execute(
            "SELECT t.model, t.condition, t.layer, a.rater_id, a.trial_id, a.answer, "
            "a.correct, a.response_ms, a.answered_at FROM answers a "
            "JOIN trials t ON t.trial_id = a.trial_id ORDER BY a.answered_at"
        )
        return [dict(r) for r in rows]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
