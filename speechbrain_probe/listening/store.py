"""SQLite store of raters, their trials and their answers.

One transaction per write, WAL journal and ``synchronous=FULL``: an answer the
server has acknowledged is on disk, so a killed server loses none. The answer
table's primary key is the trial id, so a trial can be answered once; a replayed
or duplicate answer is refused by the database itself, not only by the app. A
rater answers the trials in their (shuffled) order: only the first unanswered one.

The file is private: created with mode 0600 before SQLite opens it (SQLite gives
its ``-wal`` and ``-shm`` files the mode of the database), and an existing one with
looser bits is tightened. A path that cannot hold the database (a folder, a file
that is not SQLite, an unwritable place, a symbolic link to nowhere) raises
:class:`StoreError` naming it; a file that is not SQLite is never written to.
:func:`check_db_path` makes those checks without creating anything.
``Store(path, readonly=True)`` reads a database without writing to it or beside it
(``results`` on an archived copy).

Invitation codes (``invites``) are stored as their SHA-256 with a short hint (the
first group), so the database cannot hand out codes; registration with one is in
the same transaction as the rater's trials. ``fetches`` records which audio slots
of a trial its rater fetched; each answer keeps the slots fetched before it
(``answers.audio_fetched``: ``"ABX"`` when all three, NULL for answers stored by a
version that did not track it).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import stat
import threading
import time
from pathlib import Path

from .design import TripletDesign

__all__ = [
    "Store",
    "StoreError",
    "AlreadyAnswered",
    "UnknownTrial",
    "RaterExists",
    "TooManyRaters",
    "InvalidInvite",
    "NotCurrentTrial",
    "check_db_path",
    "normalize_invite",
]

SQLITE_MAGIC = b"SQLite format 3\x00"
#: How long a write waits for another one, in seconds.
BUSY_TIMEOUT_S = 30.0
#: Alphabet of invitation codes: no 0/O, 1/I look-alikes; 4 groups of 4 = 80 bits.
INVITE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
INVITE_GROUPS = 4

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
    answered_at REAL NOT NULL,
    audio_fetched TEXT
);
CREATE INDEX IF NOT EXISTS answers_rater ON answers(rater_id);
CREATE TABLE IF NOT EXISTS invites (
    code_hash TEXT PRIMARY KEY,
    hint TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    uses INTEGER NOT NULL CHECK (uses >= 1),
    used INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= uses),
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS invite_uses (
    rater_id TEXT PRIMARY KEY REFERENCES raters(rater_id),
    code_hash TEXT NOT NULL REFERENCES invites(code_hash),
    used_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fetches (
    trial_id TEXT NOT NULL REFERENCES trials(trial_id),
    slot TEXT NOT NULL CHECK (slot IN ('A', 'B', 'X')),
    first_at REAL NOT NULL,
    PRIMARY KEY (trial_id, slot)
) WITHOUT ROWID;
"""


class UnknownTrial(LookupError):
    """The trial does not exist or belongs to another rater."""


class AlreadyAnswered(Exception):
    """The trial has an answer already."""


class NotCurrentTrial(Exception):
    """The trial is not the rater's first unanswered one."""


class RaterExists(Exception):
    """The rater id is taken."""


class TooManyRaters(Exception):
    """The test has as many raters as it accepts."""


class InvalidInvite(Exception):
    """The invitation code is unknown or used up."""


class StoreError(ValueError):
    """The database cannot be opened or created; the message names the path and
    what to do."""


def normalize_invite(code: str) -> str | None:
    """An invitation code in canonical form (upper case, no dashes or spaces), or
    None when it cannot be one.

    Example
    -------
    >>> normalize_invite(" abcd-efgh-jkmn-pqrs "), normalize_invite("../etc")
    ('ABCDEFGHJKMNPQRS', None)
    """
    text = "".join(code.split()).replace("-", "").upper()
    if len(text) != 4 * INVITE_GROUPS or any(c not in INVITE_ALPHABET for c in text):
        return None
    return text


#: The rater's first unanswered trial.
_NEXT_TRIAL = (
    "SELECT t.trial_id, t.seq FROM trials t "
    "LEFT JOIN answers a ON a.trial_id = t.trial_id "
    "WHERE t.rater_id=? AND a.trial_id IS NULL ORDER BY t.seq LIMIT 1"
)


def _new_invite() -> str:
    text = "".join(secrets.choice(INVITE_ALPHABET) for _ in range(4 * INVITE_GROUPS))
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def _invite_hash(canonical: str) -> str:
    return hashlib.sha256(f"invite:{canonical}".encode()).hexdigest()


def _private(path: Path) -> None:
    """Drop group and other permission bits of our own file, if any."""
    try:
        info = path.stat()
        if info.st_uid == os.getuid() and info.st_mode & 0o077:
            os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
    except OSError:
        pass


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    return next(p for p in [path, *path.parents] if p.exists())


def _check_new_db_path(path: Path) -> None:
    """Can a database be created at ``path`` (which does not exist)?"""
    if path.is_symlink():
        raise StoreError(
            f"database {path} is a symbolic link to {os.readlink(path)}, which does "
            "not exist; give the path of the database file itself"
        )
    folder = _first_existing(path.parent)
    if not folder.is_dir():
        raise StoreError(
            f"cannot create database {path}: {folder} is a file, not a folder; "
            "choose a --db path inside a folder"
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"cannot create database {path}: {folder} is not writable; choose a "
            "--db path in a folder you can write to"
        )


def check_db_path(path: str | os.PathLike, readonly: bool = False) -> None:
    """Raise :class:`StoreError` naming ``path`` unless it is an SQLite file that
    can be read (and, unless ``readonly``, written, in a writable folder) or a
    new file that can be created. Creates nothing.

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> check_db_path(tmp / "new" / "answers.sqlite")
    >>> _ = (tmp / "notes.txt").write_text("my notes")
    >>> check_db_path(tmp / "notes.txt")
    Traceback (most recent call last):
    ...
    speechbrain_probe.listening.store.StoreError: .../notes.txt is not an SQLite database ...
    """
    path = Path(path)
    if not path.exists():
        if readonly:
            raise StoreError(f"database {path} does not exist")
        return _check_new_db_path(path)
    if path.is_dir():
        raise StoreError(
            f"database {path} is a folder; give a file path, e.g. {path / 'listening.sqlite'}"
        )
    if not path.is_file():
        raise StoreError(f"database {path} is not a regular file; give another --db")
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise StoreError(
            f"cannot read database {path}: {err.strerror}; check its permissions"
        ) from None
    if head and head != SQLITE_MAGIC:
        raise StoreError(
            f"{path} is not an SQLite database (it was left untouched); give the "
            "path of a listening-test database or of a new file"
        )
    if not readonly and not (
        os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
    ):
        raise StoreError(
            f"database {path} is read-only (the file or its folder, where SQLite "
            "keeps its -wal and -shm files); make both writable or copy the "
            "database elsewhere (results only reads it)"
        )


def _prepare_db_file(path: Path) -> None:
    """Make sure ``path`` can hold the database (:func:`check_db_path`), then
    create its folder and the file (mode 0600), or tighten an existing one."""
    check_db_path(path)
    if path.exists():
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            _private(p)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile: by another process, or a link
        return check_db_path(path)
    except OSError as err:
        raise StoreError(
            f"cannot create database {path}: {err.strerror}; choose a --db path in a "
            "folder you can write to"
        ) from None
    os.close(fd)


def _hash_token(token: str) -> str:
    """What the database holds of a session token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


class Store:
    """The listening test's database; safe to share between threads.

    Each thread gets its own connection; every write is one ``BEGIN IMMEDIATE``
    transaction.

    Parameters
    ----------
    path : path
        The SQLite file (created with its schema, mode 0600, when absent).
    readonly : bool
        Only read an existing database: nothing is written to it or beside it.
        With no ``-wal`` file beside it (no server has it open) it is opened as
        immutable, so that a copy in a read-only folder can be read; otherwise
        read-only, beside the server that writes it.

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

    def __init__(
        self,
        path: str | os.PathLike,
        readonly: bool = False,
    ):
        self.path = Path(path)
        self.readonly = readonly
        self._local = threading.local()
        if readonly:
            check_db_path(self.path, readonly=True)
            wal = Path(f"{self.path}-wal").exists()
            self._uri = (
                f"{self.path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
            )
        else:
            _prepare_db_file(self.path)
        try:
            conn = self._conn()
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
                self._write(self._migrate)
            self._fetched_column = self._has_fetched_column(conn)
        except sqlite3.DatabaseError as err:
            self.close()
            raise StoreError(
                f"cannot use database {self.path}: {err}; give the path of a "
                "listening-test database or of a new file in a writable folder"
            ) from None

    @staticmethod
    def _has_fetched_column(conn) -> bool:
        columns = {r["name"] for r in conn.execute("PRAGMA table_info(answers)")}
        return "audio_fetched" in columns

    def _migrate(self, conn) -> None:
        """Add what older versions of the schema lack."""
        if not self._has_fetched_column(conn):
            conn.execute("ALTER TABLE answers ADD COLUMN audio_fetched TEXT")

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        target, uri = (self._uri, True) if self.readonly else (self.path, False)
        conn = sqlite3.connect(
            target, timeout=BUSY_TIMEOUT_S, isolation_level=None, uri=uri
        )
        conn.row_factory = sqlite3.Row
        if not self.readonly:
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect("FULL")
        return conn

    def _light_conn(self) -> sqlite3.Connection:
        """A connection for bookkeeping writes that need not wait for the disk:
        ``synchronous=NORMAL`` in WAL mode survives a killed process (not a power
        cut), and the next answer's ``FULL`` commit syncs them too."""
        conn = getattr(self._local, "light", None)
        if conn is None:
            conn = self._local.light = self._connect("NORMAL")
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

    def _row(self, sql: str, *params) -> sqlite3.Row | None:
        """The first row of a query on this thread's connection, or None."""
        return self._conn().execute(sql, params).fetchone()

    # -- meta ---------------------------------------------------------------
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

    # -- invitations --------------------------------------------------------
    def create_invites(self, n: int, uses: int = 1, label: str = "") -> list[str]:
        """Create ``n`` invitation codes, each good for ``uses`` registrations;
        return them (the only time they are seen: the database keeps hashes).

        Example
        -------
        >>> store = Store(getfixture("tmp_path") / "i.sqlite")
        >>> codes = store.create_invites(2, label="lab")
        >>> len(codes), len(codes[0]), [r["label"] for r in store.list_invites()]
        (2, 19, ['lab', 'lab'])
        """
        if not 1 <= n <= 10_000 or not 1 <= uses <= 100_000:
            raise ValueError(
                f"create 1 to 10000 codes of 1 to 100000 uses each (got {n} x {uses})"
            )
        codes = [_new_invite() for _ in range(n)]
        now = time.time()

        def fn(conn):
            conn.executemany(
                "INSERT INTO invites(code_hash, hint, label, uses, used, created) "
                "VALUES (?, ?, ?, ?, 0, ?)",
                [
                    (_invite_hash(normalize_invite(c)), c[:4], label, uses, now)
                    for c in codes
                ],
            )

        self._write(fn)
        return codes

    def list_invites(self) -> list[dict]:
        """Every invitation: hint (first group), label, uses, used, created and the
        raters who registered with it (comma-separated), newest first."""
        rows = self._conn().execute(
            "SELECT i.hint, i.label, i.uses, i.used, i.created, "
            "COALESCE(GROUP_CONCAT(u.rater_id, ', '), '') AS raters "
            "FROM invites i LEFT JOIN invite_uses u ON u.code_hash = i.code_hash "
            "GROUP BY i.code_hash ORDER BY i.created DESC, i.hint"
        )
        return [dict(r) for r in rows]

    # -- raters -------------------------------------------------------------
    def create_rater(
        self,
        rater_id: str,
        design: TripletDesign,
        max_raters: int | None = None,
        require_invite: bool = False,
        invite: str | None = None,
    ) -> str:
        """Register a rater with all their trials; return their secret session token.

        With ``require_invite``, ``invite`` must be a code of :meth:`create_invites`
        with a use left, checked first (:class:`InvalidInvite`) and spent in the
        same transaction. Raises :class:`RaterExists` for a taken id and
        :class:`TooManyRaters` once ``max_raters`` are registered; nothing is
        spent or stored then.
        """
        token = secrets.token_urlsafe(24)
        canonical = normalize_invite(invite) if invite else None
        code_hash = _invite_hash(canonical) if canonical else None

        def fn(conn):
            if require_invite:
                row = conn.execute(
                    "SELECT used < uses FROM invites WHERE code_hash=?", (code_hash,)
                ).fetchone()
                if not (row and row[0]):
                    raise InvalidInvite("unknown or used-up invitation code")
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
                (rater_id, index, _hash_token(token), time.time()),
            )
            conn.executemany(
                "INSERT INTO trials(trial_id, rater_id, seq, model, condition, layer, "
                "a_path, b_path, x_path, a_speaker, b_speaker, x_utt, key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (secrets.token_urlsafe(12), rater_id, seq, *t.x.cell)
                    + (t.a.path, t.b.path, t.x.path, t.a.speaker, t.b.speaker)
                    + (t.x.utt_id, t.key)
                    for seq, t in enumerate(design.trials_for(index, rater_id))
                ],
            )
            if require_invite:
                conn.execute(
                    "UPDATE invites SET used = used + 1 WHERE code_hash=?", (code_hash,)
                )
                conn.execute(
                    "INSERT INTO invite_uses(rater_id, code_hash, used_at) VALUES (?, ?, ?)",
                    (rater_id, code_hash, time.time()),
                )
            return token

        return self._write(fn)

    def rater_for_token(self, token: str) -> str | None:
        """The rater id of a session token, or None."""
        row = self._row(
            "SELECT rater_id FROM raters WHERE token_hash=?", _hash_token(token)
        )
        return None if row is None else row["rater_id"]

    def progress(self, rater_id: str) -> dict:
        """``{"done": answered trials, "total": trials}`` of one rater."""
        row = self._row(
            "SELECT COUNT(t.trial_id) AS total, COUNT(a.trial_id) AS done FROM trials "
            "t LEFT JOIN answers a ON a.trial_id = t.trial_id WHERE t.rater_id=?",
            rater_id,
        )
        return {"done": row["done"], "total": row["total"]}

    # -- trials and answers -------------------------------------------------
    def next_trial(self, rater_id: str) -> dict | None:
        """The rater's first unanswered trial (id and seq only), or None when done."""
        row = self._row(_NEXT_TRIAL, rater_id)
        return None if row is None else dict(row)

    def trial_audio_path(self, rater_id: str, trial_id: str, slot: str) -> str:
        """The file behind slot ``A``, ``B`` or ``X`` of one of the rater's trials."""
        column = {"A": "a_path", "B": "b_path", "X": "x_path"}[slot]
        sql = f"SELECT {column} FROM trials WHERE trial_id=? AND rater_id=?"
        row = self._row(sql, trial_id, rater_id)
        if row is None:
            raise UnknownTrial(f"no trial {trial_id!r} for this rater")
        return row[0]

    def mark_fetched(self, trial_id: str, slot: str) -> None:
        """Record that the audio of ``slot`` of ``trial_id`` was served (once)."""
        conn = self._light_conn()
        if conn.execute(
            "SELECT 1 FROM fetches WHERE trial_id=? AND slot=?", (trial_id, slot)
        ).fetchone():
            return
        conn.execute(
            "INSERT OR IGNORE INTO fetches(trial_id, slot, first_at) VALUES (?, ?, ?)",
            (trial_id, slot, time.time()),
        )

    def answer(
        self, rater_id: str, trial_id: str, answer: str, response_ms: int | None = None
    ) -> dict:
        """Store one answer in its own transaction; return the rater's progress.

        Raises :class:`UnknownTrial` for a trial that is not the rater's,
        :class:`AlreadyAnswered` for one answered before and
        :class:`NotCurrentTrial` for one that is not the rater's first
        unanswered trial (answers keep the order of the design)."""
        if answer not in ("A", "B"):
            raise ValueError(f"answer must be 'A' or 'B', got {answer!r}")

        def fn(conn):
            row = conn.execute(
                "SELECT key FROM trials WHERE trial_id=? AND rater_id=?",
                (trial_id, rater_id),
            ).fetchone()
            if row is None:
                raise UnknownTrial(f"no trial {trial_id!r} for this rater")
            current = conn.execute(_NEXT_TRIAL, (rater_id,)).fetchone()
            # inside BEGIN IMMEDIATE: no other answer can come in between
            if current is None or current["trial_id"] != trial_id:
                sql = "SELECT 1 FROM answers WHERE trial_id=?"
                if conn.execute(sql, (trial_id,)).fetchone():
                    raise AlreadyAnswered(
                        f"trial {trial_id!r} has been answered already"
                    )
                raise NotCurrentTrial(f"trial {trial_id!r} is not the current trial")
            sql = "SELECT slot FROM fetches WHERE trial_id=? ORDER BY slot"
            fetched = "".join(r[0] for r in conn.execute(sql, (trial_id,)))
            values = (
                trial_id,
                rater_id,
                answer,
                int(answer == row["key"]),
                response_ms,
            )
            conn.execute(
                "INSERT INTO answers(trial_id, rater_id, answer, correct, response_ms, "
                "answered_at, audio_fetched) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*values, time.time(), fetched),
            )

        self._write(fn)
        return self.progress(rater_id)

    def answered_cells(self) -> list[dict]:
        """Every answer with its cell, correctness and the audio slots its rater
        had fetched (``audio_fetched``), for the results."""
        fetched = "a.audio_fetched" if self._fetched_column else "NULL"
        rows = self._conn().execute(
            "SELECT t.model, t.condition, t.layer, a.rater_id, a.trial_id, a.answer, "
            f"a.correct, a.response_ms, a.answered_at, {fetched} AS audio_fetched "
            "FROM answers a JOIN trials t ON t.trial_id = a.trial_id "
            "ORDER BY a.answered_at"
        )
        return [dict(r) for r in rows]

    def close(self) -> None:
        """Close this thread's connections."""
        for name in ("conn", "light"):
            conn = getattr(self._local, name, None)
            if conn is not None:
                conn.close()
                setattr(self._local, name, None)
