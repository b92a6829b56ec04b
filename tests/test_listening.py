"""Unit tests of the listening test: registry, design, store, app, results, CLI."""

from __future__ import annotations

import collections
import contextlib
import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from benchmarks.listening_load import demo_samples
from speechbrain_probe.listening import cli
from speechbrain_probe.listening.app import MAX_BODY_BYTES, create_app
from speechbrain_probe.listening.design import Trial, TripletDesign
from speechbrain_probe.listening.registry import Registry, Stimulus, load_registry
from speechbrain_probe.listening.results import (
    her_table,
    merge_eer,
    read_eer,
    wilson_interval,
)
from speechbrain_probe.listening.store import AlreadyAnswered, Store, UnknownTrial
from speechbrain_probe.result_rows import MetricRow, write_metrics

LAYERS = ("cnn1", "blstm1", "blstm3")
TOKEN = "admin-token-for-tests-0123"
# create_app keyword that keeps registration open (no invitation codes) where a
# test is about something else
OPEN = {"open_registration": True}


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return demo_samples(tmp_path_factory.mktemp("stimuli"), LAYERS)


@pytest.fixture
def app_parts(samples, tmp_path):
    registry = load_registry(samples)
    design = TripletDesign(registry, trials_per_layer=4, seed=3)
    store = Store(tmp_path / "answers.sqlite")
    app = create_app(registry, store, design, TOKEN, **OPEN)
    return registry, design, store, app


def register(client, rater="r1"):
    resp = client.post("/api/raters", json={"rater_id": rater})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def answer_trials(app, answer="A", n=None):
    """Register rater r1 on a new client of ``app`` and give ``answer`` to its
    first ``n`` trials (all when None); the client and the rater's last state."""
    client = app.test_client()
    state = register(client)
    while state["trial"] and (n is None or state["done"] < n):
        trial_id = state["trial"]["trial_id"]
        resp = client.post(
            "/api/answers", json={"trial_id": trial_id, "answer": answer}
        )
        assert resp.status_code == 201, resp.get_json()
        state = resp.get_json()
    return client, state


# -- registry ------------------------------------------------------------------------


def test_registry_reads_samples_csv_and_resolves_paths(samples):
    registry = load_registry(samples)
    assert len(registry) == 4 * 3 * len(LAYERS)
    assert [c[2] for c in registry.cells()] == list(LAYERS)
    stim = registry.stimuli[0]
    assert stim.path.startswith(str(samples.parent.resolve()))
    assert registry.is_registered(stim.path)
    assert not registry.is_registered(str(samples))


def test_registry_filters_kinds_and_references(tmp_path):
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.wav").write_bytes(b"RIFF")
    (tmp_path / "s.csv").write_text(
        "utt_id,spk_id,model,layer,condition,kind,path\n"
        "u1,s1,m,cnn1,clean,reconstruction,a.wav\n"
        "u1,s1,,,clean,original,b.wav\n"
        "u1,s1,,,clean,noise,c.wav\n"
    )
    assert [s.layer for s in load_registry(tmp_path / "s.csv").stimuli] == ["cnn1"]
    both = load_registry(tmp_path / "s.csv", kinds=("reconstruction", "original"))
    assert {(s.model, s.layer) for s in both.stimuli} == {
        ("m", "cnn1"),
        ("reference", "original"),
    }


@pytest.mark.parametrize(
    "text, error",
    [
        ("model,layer,condition,path\nm,l,c,a.wav\n", "lacks columns"),
        ("model,layer,condition,speaker,path\nm,l,c,s,missing.wav\n", "does not exist"),
        ("model,layer,condition,speaker,path\nm,l,c,,a.wav\n", "empty"),
        (
            "model,layer,condition,speaker,path\nm,l,c,s,a.wav\nm,l,c,s,a.wav\n",
            "appears twice",
        ),
        ("model,layer,condition,speaker,path\n", "no stimuli"),
    ],
)
def test_registry_rejects_bad_csv_with_a_clear_message(tmp_path, text, error):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        load_registry(tmp_path / "s.csv")


# -- design --------------------------------------------------------------------------


def test_trial_rejects_inconsistent_triplets():
    a = Stimulus("u1", "s1", "m", "l", "c", "/a")
    b = Stimulus("u2", "s2", "m", "l", "c", "/b")
    with pytest.raises(ValueError, match="share its speaker"):
        Trial(a, b, Stimulus("u3", "s2", "m", "l", "c", "/x"), "A")
    with pytest.raises(ValueError, match="different utterance"):
        Trial(a, b, a, "A")


def test_design_is_balanced_per_rater_and_latin_square_across_raters(samples):
    design = TripletDesign(load_registry(samples), trials_per_layer=4, seed=7)
    per_rater = [design.trials_for(r, f"rater{r}") for r in range(len(LAYERS))]
    for trials in per_rater:
        assert len(trials) == design.trials_per_rater == 4 * len(LAYERS)
        by_layer = collections.Counter(t.layer for t in trials)
        assert by_layer == {layer: 4 for layer in LAYERS}
        for layer in LAYERS:
            keys = collections.Counter(t.key for t in trials if t.layer == layer)
            assert keys == {"A": 2, "B": 2}
        for t in trials:  # X is another utterance of the speaker it belongs to
            same = t.a if t.key == "A" else t.b
            assert t.x.speaker == same.speaker and t.x.utt_id != same.utt_id
            assert t.a.speaker != t.b.speaker
            assert t.a.layer == t.b.layer == t.x.layer
    # Latin square: over L raters each triplet (by utterances) is heard in every layer.
    heard = collections.defaultdict(set)
    for trials in per_rater:
        for t in trials:
            heard[(t.a.utt_id, t.b.utt_id, t.x.utt_id)].add(t.layer)
    assert all(layers == set(LAYERS) for layers in heard.values())
    # randomised order, reproducible per rater
    orders = [[t.layer for t in trials] for trials in per_rater]
    assert len({tuple(o) for o in orders}) > 1
    assert design.trials_for(0, "rater0") == per_rater[0]
    # speakers used about equally
    spk = collections.Counter(
        s for t in per_rater[0] for s in (t.a.speaker, t.b.speaker)
    )
    assert max(spk.values()) - min(spk.values()) <= 2


def test_design_needs_two_speakers_with_two_utterances(tmp_path):
    stims = [Stimulus(f"u{i}", "s1", "m", "cnn1", "c", f"/{i}") for i in range(3)]
    stims.append(Stimulus("v", "s2", "m", "cnn1", "c", "/v"))
    with pytest.raises(ValueError, match="at least 2 speakers"):
        TripletDesign(Registry(stims))


# -- store ---------------------------------------------------------------------------


def test_store_uses_wal_and_refuses_replays_in_the_database(app_parts):
    registry, design, store, _ = app_parts
    store.create_rater("alice", design)
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    trial = store.next_trial("alice")
    store.answer("alice", trial["trial_id"], "B", response_ms=10)
    with pytest.raises(AlreadyAnswered):
        store.answer("alice", trial["trial_id"], "A")
    with pytest.raises(UnknownTrial):
        store.answer("bob", trial["trial_id"], "A")
    # the unique constraint holds even when the app is bypassed
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(
            "INSERT INTO answers VALUES (?, 'alice', 'A', 1, 0, 0, NULL)",
            (trial["trial_id"],),
        )
    row = conn.execute("SELECT rater_id, answer, response_ms FROM answers").fetchall()
    assert row == [("alice", "B", 10)]


def test_store_concurrent_answers_from_threads_are_all_kept(app_parts):
    _, design, store, _ = app_parts
    raters = [f"t{i}" for i in range(8)]
    for r in raters:
        store.create_rater(r, design)
    errors = []

    def work(rater):
        try:
            while (trial := store.next_trial(rater)) is not None:
                store.answer(rater, trial["trial_id"], "A")
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(r,)) for r in raters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.answered_cells()) == len(raters) * design.trials_per_rater


# -- app: rater flow and validation ---------------------------------------------------


def test_rater_flow_progress_and_audio(app_parts):
    registry, design, store, app = app_parts
    client = app.test_client()
    state = register(client)
    assert (state["done"], state["total"]) == (0, design.trials_per_rater)
    for i in range(3):
        trial = state["trial"]
        for slot in "ABX":
            resp = client.get(trial["audio"][slot])
            assert resp.status_code == 200 and resp.mimetype == "audio/wav"
            assert resp.data[:4] == b"RIFF"
            assert resp.headers["Cache-Control"] == "no-store"
            assert "ETag" not in resp.headers and "Last-Modified" not in resp.headers
        resp = client.post(
            "/api/answers",
            json={"trial_id": trial["trial_id"], "answer": "A", "response_ms": 5},
        )
        assert resp.status_code == 201
        state = resp.get_json()
        assert state["done"] == i + 1
        assert state["trial"]["trial_id"] != trial["trial_id"]
    answers = store.answered_cells()
    assert len(answers) == 3 and {a["rater_id"] for a in answers} == {"r1"}


def test_state_never_reveals_key_speaker_path_or_layer(app_parts, samples):
    registry, _, _, app = app_parts
    client = app.test_client()
    text = json.dumps(register(client))
    text += client.get("/api/state").get_data(as_text=True)
    secrets = {s.speaker for s in registry.stimuli} | {
        s.layer for s in registry.stimuli
    }
    secrets |= {s.utt_id for s in registry.stimuli} | {str(samples.parent.resolve())}
    leaked = [s for s in secrets if s in text]
    assert leaked == []
    assert '"key"' not in text and "correct" not in text


def test_rater_cannot_reach_other_raters_trials_or_answers(app_parts):
    _, _, _, app = app_parts
    alice, bob = app.test_client(), app.test_client()
    a_trial = register(alice, "alice")["trial"]
    register(bob, "bob")
    assert bob.get(a_trial["audio"]["X"]).status_code == 404
    resp = bob.post(
        "/api/answers", json={"trial_id": a_trial["trial_id"], "answer": "A"}
    )
    assert resp.status_code == 404
    assert (
        alice.post(
            "/api/answers", json={"trial_id": a_trial["trial_id"], "answer": "B"}
        ).status_code
        == 201
    )
    # bob's state counts only bob's answers
    assert bob.get("/api/state").get_json()["done"] == 0
    # no session at all
    anon = app.test_client()
    assert anon.get(a_trial["audio"]["A"]).status_code == 401
    assert anon.get("/api/state").status_code == 401
    # admin pages need the token
    for url in ("/admin", "/admin/her.csv", "/admin/her.png"):
        assert alice.get(url).status_code == 403
        assert (
            alice.get(
                url, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}
            ).status_code
            == 403
        )


@pytest.mark.parametrize(
    "url",
    [
        "/audio/../../etc/passwd",
        "/audio/..%2F..%2Fetc%2Fpasswd/X",
        "/audio/%2Fetc%2Fpasswd/A",
        "/static/../answers.sqlite",
        "/audio/TRIAL/../../../../etc/passwd",
        "/audio/TRIAL/C",
        "/audio/TRIAL/x",
    ],
)
def test_no_path_traversal(app_parts, url):
    _, _, _, app = app_parts
    client = app.test_client()
    trial_id = register(client)["trial"]["trial_id"]
    resp = client.get(url.replace("TRIAL", trial_id))
    assert 400 <= resp.status_code < 500
    assert b"root:" not in resp.data and b"SQLite" not in resp.data


def test_audio_outside_the_registered_set_is_refused(app_parts, tmp_path):
    registry, design, store, _ = app_parts
    client_app = create_app(
        Registry(registry.stimuli[:1]), store, design, TOKEN, **OPEN
    )
    client = client_app.test_client()
    trial = register(client)["trial"]
    only = registry.stimuli[0].path
    for slot in "ABX":
        path = store.trial_audio_path("r1", trial["trial_id"], slot)
        expected = 200 if path == only else 410
        assert client.get(trial["audio"][slot]).status_code == expected


@pytest.mark.parametrize(
    "kwargs, status",
    [
        (dict(data="{not json", content_type="application/json"), 400),
        (dict(data="[1, 2]", content_type="application/json"), 400),
        (
            dict(
                data="trial_id=x&answer=A",
                content_type="application/x-www-form-urlencoded",
            ),
            415,
        ),
        (dict(json={"trial_id": "nope", "answer": "A"}), 404),
        (dict(json={"trial_id": "../../x", "answer": "A"}), 404),
        (dict(json={"trial_id": "TRIAL", "answer": "C"}), 400),
        (dict(json={"trial_id": "TRIAL", "answer": 1}), 400),
        (dict(json={"trial_id": "TRIAL"}), 400),
        (dict(json={"trial_id": "TRIAL", "answer": "A", "extra": 1}), 400),
        (dict(json={"trial_id": "TRIAL", "answer": "A", "response_ms": -4}), 400),
        (dict(json={"trial_id": "TRIAL", "answer": "A", "response_ms": True}), 400),
        (dict(json={"trial_id": "TRIAL", "answer": "A", "response_ms": "9"}), 400),
        (
            dict(
                json={"trial_id": "TRIAL", "answer": "A", "pad": "x" * MAX_BODY_BYTES}
            ),
            413,
        ),
    ],
)
def test_malformed_answers_get_4xx_and_store_nothing(app_parts, kwargs, status):
    _, _, store, app = app_parts
    client = app.test_client()
    trial_id = register(client)["trial"]["trial_id"]
    if "json" in kwargs:
        kwargs = dict(
            json={
                k: (trial_id if v == "TRIAL" else v) for k, v in kwargs["json"].items()
            }
        )
    resp = client.post("/api/answers", **kwargs)
    assert resp.status_code == status, resp.get_json()
    assert "error" in resp.get_json()
    assert store.answered_cells() == []


def test_replayed_and_duplicate_answers_are_refused(app_parts):
    _, _, store, app = app_parts
    client = app.test_client()
    trial_id = register(client)["trial"]["trial_id"]
    body = {"trial_id": trial_id, "answer": "A"}
    assert client.post("/api/answers", json=body).status_code == 201
    assert client.post("/api/answers", json=body).status_code == 409
    assert client.post("/api/answers", json={**body, "answer": "B"}).status_code == 409
    (answer,) = store.answered_cells()
    assert answer["answer"] == "A"


def test_registration_validation(app_parts):
    _, _, _, app = app_parts
    client = app.test_client()
    assert client.post("/api/raters", json={"rater_id": "bad id!"}).status_code == 400
    assert client.post("/api/raters", json={"rater_id": "x" * 65}).status_code == 400
    assert client.post("/api/raters", json={}).status_code == 400
    register(client, "carol")
    # same browser again, and the same id from another browser
    assert client.post("/api/raters", json={"rater_id": "dave"}).status_code == 409
    assert (
        app.test_client().post("/api/raters", json={"rater_id": "carol"}).status_code
        == 409
    )
    # a forged session cookie is no session
    forged = app.test_client()
    forged.set_cookie("lt_session", "forged-token")
    assert forged.get("/api/state").status_code == 401


def test_finished_rater_gets_no_trial(app_parts):
    _, design, _, app = app_parts
    client, state = answer_trials(app, "B")
    assert state["done"] == state["total"] == design.trials_per_rater
    assert client.get("/api/state").get_json()["trial"] is None


def test_admin_page_csv_and_figure(app_parts):
    _, _, _, app = app_parts
    answer_trials(app, "A", 6)
    admin = app.test_client()
    resp = admin.get(f"/admin?token={TOKEN}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin")
    page = admin.get("/admin")  # cookie set by the redirect
    assert page.status_code == 200 and b"1 raters, 6 answers" in page.data
    rows = list(
        csv.DictReader(admin.get("/admin/her.csv").get_data(as_text=True).splitlines())
    )
    assert sum(int(r["n"]) for r in rows) == 6
    raw = admin.get("/admin/answers.csv").get_data(as_text=True).splitlines()
    assert len(raw) == 1 + 6 and raw[0].startswith("model,condition,layer,rater_id")
    png = app.test_client().get(
        "/admin/her.png", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_registrations_beyond_max_raters_are_refused(app_parts):
    registry, design, store, _ = app_parts
    app = create_app(registry, store, design, TOKEN, max_raters=2, **OPEN)
    register(app.test_client(), "one")
    register(app.test_client(), "two")
    resp = app.test_client().post("/api/raters", json={"rater_id": "three"})
    assert resp.status_code == 403
    n = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM raters").fetchone()[0]
    assert n == 2


def test_short_admin_token_is_refused(app_parts):
    registry, design, store, _ = app_parts
    with pytest.raises(ValueError, match="at least 16"):
        create_app(registry, store, design, "short")


# -- results -------------------------------------------------------------------------


def test_wilson_interval_properties():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and 0.2 < hi < 0.35
    lo, hi = wilson_interval(10, 10)
    assert hi == 1.0 and 0.65 < lo < 0.8
    lo_small, hi_small = wilson_interval(5, 10)
    lo_big, hi_big = wilson_interval(500, 1000)
    assert lo_small < lo_big < 0.5 < hi_big < hi_small
    with pytest.raises(ValueError):
        wilson_interval(3, 0)


def test_her_table_counts_errors_per_cell():
    rows = [
        dict(model="m", condition="clean", layer=layer, rater_id=r, correct=c)
        for layer, r, c in [
            ("blstm1", "a", 0),
            ("blstm1", "b", 1),
            ("cnn1", "a", 1),
            ("cnn1", "a", 1),
            ("cnn1", "b", 0),
            ("cnn1", "b", 1),
        ]
    ]
    table = her_table(rows)
    assert [r["layer"] for r in table] == ["cnn1", "blstm1"]
    assert (table[0]["n"], table[0]["errors"], table[0]["raters"], table[0]["her"]) == (
        4,
        1,
        2,
        0.25,
    )
    assert table[1]["her"] == 0.5


def test_read_eer_reads_fractions_through_the_data_model(tmp_path):
    write_metrics(
        tmp_path / "metrics.csv",
        [
            MetricRow("m", "a", "t", "cnn1", "clean", "eer_ge2e", 0.05, 0.04, 0.06, 9),
            MetricRow("m", "a", "t", "cnn2", "clean", "eer_ge2e", None),
            MetricRow("", "", "", "original", "clean", "eer_ge2e", 0.02, 0.01, 0.03, 9),
            MetricRow("m", "a", "t", "cnn1", "clean", "stoi", 0.9, None, None, 9),
        ],
    )
    eer = read_eer(tmp_path / "metrics.csv")
    assert eer[("m", "clean", "cnn1")] == (0.05, 0.04, 0.06)
    assert eer[("m", "clean", "cnn2")] == (None, None, None)
    with pytest.raises(ValueError, match="no rows of metric 'eer_ecapa'"):
        read_eer(tmp_path / "metrics.csv", metric="eer_ecapa")
    table = merge_eer(
        her_table(
            [
                dict(
                    model="m", condition="clean", layer="cnn1", rater_id="r", correct=1
                ),
                dict(
                    model="reference",
                    condition="clean",
                    layer="original",
                    rater_id="r",
                    correct=1,
                ),
            ]
        ),
        eer,
        "eer_ge2e",
    )
    by_layer = {row["layer"]: row["eer"] for row in table}
    # the reference takes the model-independent row that run_study writes
    assert by_layer == {"cnn1": 0.05, "original": 0.02}


# -- CLI -----------------------------------------------------------------------------


def test_cli_results_writes_csv_and_figure_with_eer(
    app_parts, samples, tmp_path, capsys
):
    registry, design, store, app = app_parts
    answer_trials(app, "A")
    metrics = write_metrics(
        tmp_path / "metrics.csv",
        [
            MetricRow(
                "demo_model",
                "blstm",
                "baseline",
                layer,
                "clean",
                "eer_ge2e",
                eer,
                eer - 0.01,
                eer + 0.01,
                100,
            )
            for layer, eer in zip(LAYERS, (0.05, 0.2, 0.4))
        ],
    )
    out = tmp_path / "out"
    assert (
        cli.main(
            [
                "results",
                "--db",
                str(store.path),
                "--out-dir",
                str(out),
                "--metrics",
                str(metrics),
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(open(out / "her.csv")))
    assert [r["layer"] for r in rows] == list(LAYERS)
    assert [float(r["eer"]) for r in rows] == pytest.approx([0.05, 0.2, 0.4])
    # answering "A" everywhere is wrong exactly on the trials whose key is B
    wrong = sum(r["errors"] for r in her_table(store.answered_cells()))
    keys = (
        sqlite3.connect(store.path)
        .execute("SELECT COUNT(*) FROM trials WHERE key='B'")
        .fetchone()[0]
    )
    assert sum(int(r["errors"]) for r in rows) == wrong == keys
    assert (out / "her_eer.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("her.csv", "her_eer.png", "answers.csv"):
        assert (out / name).stat().st_mode & 0o077 == 0, name
    answers = list(csv.DictReader(open(out / "answers.csv")))
    assert len(answers) == design.trials_per_rater and {
        a["answer"] for a in answers
    } == {"A"}
    assert sum(1 - int(a["correct"]) for a in answers) == keys
    assert "HER" in capsys.readouterr().out


def test_cli_results_errors_clearly(tmp_path, capsys):
    assert (
        cli.main(
            [
                "results",
                "--db",
                str(tmp_path / "none.sqlite"),
                "--out-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    Store(tmp_path / "empty.sqlite")
    assert (
        cli.main(
            [
                "results",
                "--db",
                str(tmp_path / "empty.sqlite"),
                "--out-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no answers" in capsys.readouterr().err


def test_an_observer_that_listens_errs_less_on_clean_layers(tmp_path):
    """The keys the app stores match the audio it serves: an observer comparing
    long-term spectra of X with A and B is right on the clean first layer and
    near chance on the noisiest last one (demo stimuli: 20 dB down to -20 dB SNR)."""
    import io

    import numpy as np
    import soundfile as sf

    samples = demo_samples(tmp_path / "st", ("cnn1", "blstm5"), duration_s=0.4)
    registry = load_registry(samples)
    design = TripletDesign(registry, trials_per_layer=10, seed=0)
    store = Store(tmp_path / "db.sqlite")
    app = create_app(registry, store, design, TOKEN, **OPEN)

    def spectrum(client, url):
        wave, _ = sf.read(io.BytesIO(client.get(url).data))
        frames = np.lib.stride_tricks.sliding_window_view(wave, 512)[::256]
        return np.log(
            np.mean(np.abs(np.fft.rfft(frames * np.hanning(512))) ** 2, axis=0) + 1e-8
        )

    for rater in ("obs1", "obs2"):
        client = app.test_client()
        state = register(client, rater)
        while state["trial"]:
            a, b, x = (spectrum(client, state["trial"]["audio"][s]) for s in "ABX")
            choice = "A" if np.linalg.norm(x - a) < np.linalg.norm(x - b) else "B"
            state = client.post(
                "/api/answers",
                json={"trial_id": state["trial"]["trial_id"], "answer": choice},
            ).get_json()
    her = {r["layer"]: r for r in her_table(store.answered_cells())}
    assert her["cnn1"]["n"] == her["blstm5"]["n"] == 20
    assert her["cnn1"]["her"] <= 0.1
    assert her["blstm5"]["her"] > her["cnn1"]["her"] + 0.15


def test_cli_serve_refuses_a_database_of_another_design(samples, tmp_path, capsys):
    db = tmp_path / "answers.sqlite"
    Store(db).set_meta_once("design", "fingerprint-of-another-design")
    argv = ["serve", "--samples", str(samples), "--db", str(db), "--port", "0"]
    assert cli.main(argv) == 2
    assert "different design" in capsys.readouterr().err
    assert cli.main([*argv[:-2], "--trials-per-layer", "0"]) == 2
    assert "trials_per_layer must be >= 1" in capsys.readouterr().err


# -- hostile raters and careless operators (issue #16) --------------------------------
#
# Each test below failed on the code before the fix; see the commit messages.


def _serve_argv(samples, db, *more):
    return [
        "serve",
        "--samples",
        str(samples),
        "--db",
        str(db),
        "--port",
        "0",
        "--admin-token",
        TOKEN,
        *more,
    ]


@pytest.fixture
def no_serving(monkeypatch):
    """Fail instead of serving forever when a CLI test gets past its checks.

    ``serve`` binds its port (here a free one) before it creates the database,
    so only running the bound server is refused; ``serve`` closes it then."""
    from waitress.server import BaseWSGIServer, MultiSocketServer

    def refuse(self):
        raise AssertionError("serve got as far as starting the server")

    monkeypatch.setattr(BaseWSGIServer, "run", refuse)
    monkeypatch.setattr(MultiSocketServer, "run", refuse)


def _unwritable_dir():
    """A folder nobody (not even root) can create files in, or None."""
    path = "/sys"
    if not os.path.isdir(path):
        return None
    try:
        fd = os.open(
            os.path.join(path, "speechbrain-probe-probe"), os.O_CREAT | os.O_WRONLY
        )
    except OSError:
        return path
    os.close(fd)  # pragma: no cover - a writable /sys: no such folder here
    return None


@pytest.mark.parametrize(
    "case", ["parent_is_a_file", "is_a_directory", "not_sqlite", "unwritable"]
)
def test_cli_serve_bad_db_exits_2_naming_the_path(
    samples, tmp_path, capsys, no_serving, case
):
    if case == "parent_is_a_file":
        (tmp_path / "afile").write_text("x")
        db = tmp_path / "afile" / "answers.sqlite"
    elif case == "is_a_directory":
        db = tmp_path / "adir"
        db.mkdir()
    elif case == "not_sqlite":
        db = tmp_path / "notes.sqlite"
        db.write_text("my precious notes\n" * 200)
    else:
        if _unwritable_dir() is None:
            pytest.skip("no unwritable folder on this machine")
        db = Path(_unwritable_dir()) / "speechbrain-probe-answers.sqlite"
    before = db.read_bytes() if db.is_file() else None
    assert cli.main(_serve_argv(samples, db)) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "Traceback" not in err, err
    if before is not None:
        assert db.read_bytes() == before  # a file that is not SQLite is never touched


def test_cli_results_bad_db_or_out_dir_exits_2_naming_the_path(
    app_parts, tmp_path, capsys
):
    _, _, store, app = app_parts
    answer_trials(app, n=1)
    (tmp_path / "afile").write_text("x")
    outs = [tmp_path / "afile", tmp_path / "afile" / "sub"]
    if _unwritable_dir():
        outs.append(Path(_unwritable_dir()) / "speechbrain-probe-out")
    for out in outs:
        argv = ["results", "--db", str(store.path), "--out-dir", str(out)]
        assert cli.main(argv) == 2, out
        err = capsys.readouterr().err
        assert str(out) in err and "Traceback" not in err, err
    notes = tmp_path / "notes.sqlite"
    notes.write_text("not a database\n" * 100)
    argv = ["results", "--db", str(notes), "--out-dir", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert str(notes) in capsys.readouterr().err
    assert notes.read_text() == "not a database\n" * 100


@pytest.fixture
def small_study(tmp_path):
    """Own stimuli (tests below change files) and an open-registration app on them."""
    samples = demo_samples(tmp_path / "study", ("cnn1",), speakers=2, utterances=2)
    registry = load_registry(samples)
    design = TripletDesign(registry, trials_per_layer=2, seed=0)
    store = Store(tmp_path / "answers.sqlite")
    app = create_app(registry, store, design, TOKEN, **OPEN)
    return samples, store, app


@pytest.mark.parametrize("target", ["secret", "/etc/passwd"])
def test_stimulus_replaced_by_a_symlink_after_start_is_not_served(
    small_study, tmp_path, target
):
    _, store, app = small_study
    client = app.test_client()
    trial = register(client)["trial"]
    path = store.trial_audio_path("r1", trial["trial_id"], "X")
    if target == "secret":
        target = tmp_path / "secret.wav"
        target.write_bytes(b"RIFF top secret " * 64)
    os.unlink(path)
    os.symlink(target, path)
    resp = client.get(trial["audio"]["X"])
    assert resp.status_code in (404, 410), resp.status_code
    assert b"secret" not in resp.data and b"root:" not in resp.data


def test_stimulus_changed_on_disk_after_start_is_not_served(small_study):
    _, store, app = small_study
    client = app.test_client()
    trial = register(client)["trial"]
    path = Path(store.trial_audio_path("r1", trial["trial_id"], "A"))
    data = bytearray(path.read_bytes())
    data[-8:] = b"CHANGED!"  # same size, other bytes
    path.write_bytes(bytes(data))
    resp = client.get(trial["audio"]["A"])
    assert resp.status_code == 410 and b"CHANGED!" not in resp.data


def test_stimulus_replaced_by_a_fifo_does_not_hang_the_server(small_study):
    _, store, app = small_study
    client = app.test_client()
    trial = register(client)["trial"]
    path = store.trial_audio_path("r1", trial["trial_id"], "B")
    os.unlink(path)
    os.mkfifo(path)
    statuses = []
    worker = threading.Thread(
        target=lambda: statuses.append(client.get(trial["audio"]["B"]).status_code),
        daemon=True,
    )
    worker.start()
    worker.join(20)
    if worker.is_alive():  # unblock the reader before failing
        with open(path, "wb"):
            pass
        pytest.fail("a FIFO in place of a stimulus blocked the request")
    assert statuses == [410]


def _study_with_extra_row(tmp_path, extra_path):
    """A valid study (2 speakers x 2 utterances) plus one row pointing elsewhere."""
    study = tmp_path / "study"
    study.mkdir()
    rows = ["utt_id,spk_id,model,layer,condition,kind,path"]
    for s in range(2):
        for u in range(2):
            name = f"s{s}u{u}.wav"
            (study / name).write_bytes(b"RIFF" + bytes([s, u]) * 50)
            rows.append(f"s{s}u{u},s{s},m,cnn1,clean,reconstruction,{name}")
    rows.append(f"x1,s9,m,cnn1,clean,reconstruction,{extra_path}")
    (study / "samples.csv").write_text("\n".join(rows) + "\n")
    return study / "samples.csv"


@pytest.mark.parametrize("where", ["etc_passwd", "symlink_out", "dotdot", "directory"])
def test_samples_csv_with_a_stimulus_outside_the_study_is_refused_at_start(
    tmp_path, capsys, no_serving, where
):
    outside = tmp_path / "elsewhere.wav"
    outside.write_bytes(b"RIFF" * 20)
    extra = {
        "etc_passwd": "/etc/passwd",
        "symlink_out": "link.wav",
        "dotdot": "../elsewhere.wav",
        "directory": "adir",
    }[where]
    samples = _study_with_extra_row(tmp_path, extra)
    if where == "symlink_out":
        os.symlink(outside, samples.parent / "link.wav")
    if where == "directory":
        (samples.parent / "adir").mkdir()
    with pytest.raises((ValueError, FileNotFoundError), match=r"line 6"):
        load_registry(samples)
    db = tmp_path / "answers.sqlite"
    assert cli.main(_serve_argv(samples, db)) == 2
    err = capsys.readouterr().err
    assert "line 6" in err and "Traceback" not in err
    assert not db.exists()


def test_registration_needs_an_invitation_by_default(app_parts):
    registry, design, store, _ = app_parts
    app = create_app(registry, store, design, TOKEN)
    client = app.test_client()
    resp = client.post("/api/raters", json={"rater_id": "alice"})
    assert resp.status_code == 403, resp.get_json()
    resp = client.post("/api/raters", json={"rater_id": "alice", "invite": "ABCD-EFGH"})
    assert resp.status_code == 403
    (code,) = store.create_invites(1)
    resp = client.post("/api/raters", json={"rater_id": "alice", "invite": code})
    assert resp.status_code == 201
    # single use: a second browser with the same code is refused
    other = app.test_client()
    resp = other.post("/api/raters", json={"rater_id": "bob", "invite": code})
    assert resp.status_code == 403
    # codes are stored hashed
    dump = "\n".join(sqlite3.connect(store.path).iterdump())
    assert code not in dump and code.replace("-", "") not in dump


def test_taken_rater_id_is_not_confirmed_to_someone_without_an_invitation(app_parts):
    registry, design, store, _ = app_parts
    app = create_app(registry, store, design, TOKEN, max_raters=3)
    codes = store.create_invites(2)
    assert register_with(app.test_client(), "alice", codes[0]).status_code == 201
    taken = register_with(app.test_client(), "alice", "WRONG-CODE")
    free = register_with(app.test_client(), "zed", "WRONG-CODE")
    assert (taken.status_code, taken.get_json()) == (free.status_code, free.get_json())
    assert "alice" not in taken.get_data(as_text=True)
    # junk registrations without codes cannot fill --max-raters
    for i in range(5):
        assert register_with(app.test_client(), f"junk{i}", None).status_code == 403
    # with a valid code, a taken id gets a message that does not echo it
    resp = register_with(app.test_client(), "alice", codes[1])
    assert resp.status_code == 409 and "alice" not in resp.get_data(as_text=True)
    assert register_with(app.test_client(), "bob", codes[1]).status_code == 201


def register_with(client, rater, invite):
    body = (
        {"rater_id": rater} if invite is None else {"rater_id": rater, "invite": invite}
    )
    return client.post("/api/raters", json=body)


def test_registration_is_rate_limited_per_client(app_parts):
    registry, design, store, _ = app_parts
    app = create_app(registry, store, design, TOKEN, **OPEN)
    statuses = [
        app.test_client().post("/api/raters", json={"rater_id": f"bot{i}"}).status_code
        for i in range(40)
    ]
    assert 429 in statuses, statuses
    limited = app.test_client().post("/api/raters", json={"rater_id": "bot-last"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    # another client is not affected
    other = app.test_client().post(
        "/api/raters",
        json={"rater_id": "human"},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert other.status_code == 201


def test_registration_limit_refills_with_time(app_parts, monkeypatch):
    from speechbrain_probe.listening.app import RateLimiter

    registry, design, store, _ = app_parts
    now = [1000.0]
    monkeypatch.setattr(RateLimiter, "clock", staticmethod(lambda: now[0]))
    app = create_app(
        registry, store, design, TOKEN, register_per_minute=6, register_burst=2, **OPEN
    )

    def attempt(i):
        return app.test_client().post("/api/raters", json={"rater_id": f"u{i}"})

    assert [attempt(i).status_code for i in range(3)] == [201, 201, 429]
    assert attempt(3).headers["Retry-After"] == "10"
    now[0] += 10
    assert [attempt(i).status_code for i in range(4, 6)] == [201, 429]


def _admin_form_csrf(page: str) -> str:
    import re

    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def test_admin_creates_and_lists_invitation_codes(app_parts):
    import re

    registry, design, store, _ = app_parts
    app = create_app(registry, store, design, TOKEN)
    admin = app.test_client()
    assert admin.get(f"/admin?token={TOKEN}").status_code == 303
    page = admin.get("/admin").get_data(as_text=True)
    assert 'action="/admin/invites"' in page
    form = {
        "count": "2",
        "uses": "1",
        "label": "lab day 1",
        "csrf": _admin_form_csrf(page),
    }
    # no admin cookie, a wrong CSRF field, a foreign Origin: refused
    assert app.test_client().post("/admin/invites", data=form).status_code == 403
    assert admin.post("/admin/invites", data={**form, "csrf": "x"}).status_code == 403
    foreign = admin.post(
        "/admin/invites", data=form, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    cross = admin.post(
        "/admin/invites", data=form, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403
    assert store.list_invites() == []
    created = admin.post("/admin/invites", data=form)
    assert created.status_code == 200
    codes = re.findall(
        r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b",
        created.get_data(as_text=True),
    )
    assert len(set(codes)) == 2
    assert register_with(app.test_client(), "carol", codes[0]).status_code == 201
    listing = admin.get("/admin").get_data(as_text=True)
    assert "lab day 1" in listing and "carol" in listing
    assert codes[1] not in listing  # listed by a short hint only, shown in full once
    rows = store.list_invites()
    assert sorted(r["used"] for r in rows) == [0, 1]


def test_duplicate_json_keys_are_refused(app_parts):
    _, _, store, app = app_parts
    client = app.test_client()
    trial_id = register(client)["trial"]["trial_id"]
    body = f'{{"trial_id": "{trial_id}", "answer": "A", "answer": "B"}}'
    resp = client.post("/api/answers", data=body, content_type="application/json")
    assert resp.status_code == 400 and "duplicate" in resp.get_json()["error"]
    assert store.answered_cells() == []
    resp = app.test_client().post(
        "/api/raters",
        data='{"rater_id": "a1", "rater_id": "a2"}',
        content_type="application/json",
    )
    assert resp.status_code == 400


def test_results_count_answers_given_without_fetching_the_audio(app_parts, tmp_path):
    _, _, store, app = app_parts
    client = app.test_client()
    state = register(client)
    for slots in ("ABX", "X", ""):
        trial = state["trial"]
        for slot in slots:
            assert client.get(trial["audio"][slot]).status_code == 200
        state = client.post(
            "/api/answers", json={"trial_id": trial["trial_id"], "answer": "A"}
        ).get_json()
    assert [a["audio_fetched"] for a in store.answered_cells()] == ["ABX", "X", ""]
    assert sum(r["without_audio"] for r in her_table(store.answered_cells())) == 2
    admin = app.test_client()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    her = list(
        csv.DictReader(
            admin.get("/admin/her.csv", headers=auth)
            .get_data(as_text=True)
            .splitlines()
        )
    )
    assert sum(int(r["without_audio"]) for r in her) == 2
    answers = list(
        csv.DictReader(
            admin.get("/admin/answers.csv", headers=auth)
            .get_data(as_text=True)
            .splitlines()
        )
    )
    assert sorted(a["audio_fetched"] for a in answers) == ["", "ABX", "X"]
    page = admin.get("/admin", headers=auth).get_data(as_text=True)
    assert "2 of them without all their audio fetched" in page


def test_admin_token_in_the_url_only_on_admin_and_the_cookie_holds_a_hash(app_parts):
    _, _, _, app = app_parts
    client = app.test_client()
    for url in ("/admin/her.csv", "/admin/answers.csv", "/admin/her.png"):
        assert client.get(f"{url}?token={TOKEN}").status_code == 403, url
    resp = client.get(f"/admin?token={TOKEN}")
    assert resp.status_code == 303
    cookie = resp.headers["Set-Cookie"]
    assert TOKEN not in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.get("/admin/her.csv").status_code == 200  # the cookie works
    forged = app.test_client()
    forged.set_cookie("lt_admin", TOKEN, path="/admin")  # the raw token is no cookie
    assert forged.get("/admin/her.csv").status_code == 403


def test_database_and_its_wal_are_private(tmp_path, app_parts):
    registry, design, _, _ = app_parts
    store = Store(tmp_path / "private.sqlite")
    store.create_rater("alice", design)
    names = ["private.sqlite", "private.sqlite-wal", "private.sqlite-shm"]
    modes = {n: oct((tmp_path / n).stat().st_mode & 0o777) for n in names}
    assert set(modes.values()) == {"0o600"}, modes


def test_cli_short_admin_token_is_refused_before_creating_the_database(
    samples, tmp_path, capsys, no_serving
):
    db = tmp_path / "answers.sqlite"
    argv = _serve_argv(samples, db)
    argv[argv.index("--admin-token") + 1] = "short"
    assert cli.main(argv) == 2
    assert "at least 16" in capsys.readouterr().err
    assert not db.exists()


def test_cli_refuses_absurd_trials_per_layer_and_warns_on_long_sessions(
    samples, tmp_path, capsys, no_serving
):
    db = tmp_path / "answers.sqlite"
    assert cli.main(_serve_argv(samples, db, "--trials-per-layer", "100000")) == 2
    err = capsys.readouterr().err
    assert "100000" in err and "at most" in err
    assert not db.exists()
    with pytest.raises(AssertionError, match="starting the server"):
        cli.main(_serve_argv(samples, db, "--trials-per-layer", "120"))
    assert "warning" in capsys.readouterr().err


def test_audio_answers_byte_ranges(app_parts):
    _, _, _, app = app_parts
    client = app.test_client()
    url = register(client)["trial"]["audio"]["X"]
    full = client.get(url)
    assert full.status_code == 200 and full.headers["Accept-Ranges"] == "bytes"
    data, n = full.data, len(full.data)
    for header, (start, stop) in {
        "bytes=0-9": (0, 10),
        "bytes=100-": (100, n),
        "bytes=-500": (n - 500, n),
        "bytes=0-": (0, n),
    }.items():
        resp = client.get(url, headers={"Range": header})
        assert resp.status_code == 206, header
        assert resp.headers["Content-Range"] == f"bytes {start}-{stop - 1}/{n}"
        assert resp.data == data[start:stop]
        assert "ETag" not in resp.headers and "Last-Modified" not in resp.headers
        assert resp.headers["Cache-Control"] == "no-store"
    resp = client.get(url, headers={"Range": f"bytes={n}-"})
    assert resp.status_code == 416 and resp.headers["Content-Range"] == f"bytes */{n}"


def test_secure_cookies_option(app_parts, samples):
    registry, design, store, _ = app_parts
    args = cli.build_parser().parse_args(
        ["serve", "--samples", str(samples), "--db", "x.sqlite", "--secure-cookies"]
    )
    assert args.secure_cookies is True
    app = create_app(registry, store, design, TOKEN, secure_cookies=True, **OPEN)
    client = app.test_client()
    resp = client.post("/api/raters", json={"rater_id": "sec"})
    assert "Secure" in resp.headers["Set-Cookie"]
    resp = client.get(f"/admin?token={TOKEN}")
    assert "Secure" in resp.headers["Set-Cookie"]


def test_stimuli_root_allows_a_folder_besides_the_csv(tmp_path):
    samples = _study_with_extra_row(tmp_path, "../elsewhere.wav")
    (tmp_path / "elsewhere.wav").write_bytes(b"RIFF" * 20)
    with pytest.raises(ValueError, match="outside the study"):
        load_registry(samples)
    registry = load_registry(samples, roots=[tmp_path])
    path = str((tmp_path / "elsewhere.wav").resolve())
    assert registry.read_audio(path) == b"RIFF" * 20


# -- issue 26: wrong answer keys, fetch tracking, careless settings -------------------
#
# Each test below failed on the code before the fix (run against it in a scratch copy).


def _rows_csv(tmp_path, rows, files):
    """A study folder with ``files`` ({name: bytes}) and a CSV of ``rows``
    (utt_id, spk_id, model, path); returns the CSV's path."""
    study = tmp_path / "study"
    study.mkdir(exist_ok=True)
    for name, data in files.items():
        (study / name).write_bytes(data)
    lines = ["utt_id,spk_id,model,layer,condition,kind,path"]
    lines += [f"{u},{s},{m},cnn1,clean,reconstruction,{p}" for u, s, m, p in rows]
    (study / "samples.csv").write_text("\n".join(lines) + "\n")
    return study / "samples.csv"


FOUR_VOICES = [("s0u0", "s0"), ("s0u1", "s0"), ("s1u0", "s1"), ("s1u1", "s1")]


@pytest.mark.parametrize("reuse", ["one_file_two_speakers", "copies_two_utterances"])
def test_one_recording_listed_as_two_speakers_or_utterances_is_refused(
    tmp_path, capsys, no_serving, reuse
):
    """48 of 864 slots of an outside test played another voice under its label:
    the trial keys were wrong. Identical bytes must keep one identity."""
    files = {f"{u}.wav": b"RIFF" + u.encode() * 40 for u, _ in FOUR_VOICES}
    rows = [(u, s, "m", f"{u}.wav") for u, s in FOUR_VOICES]
    if reuse == "one_file_two_speakers":
        rows.append(("s2u0", "s2", "m", "s0u0.wav"))  # line 6 reuses line 2's wav
        lines = ("line 2", "line 6")
    else:
        files["copy.wav"] = files["s1u1.wav"]  # line 6: a copy of line 5's wav
        rows.append(("s1u9", "s1", "m", "copy.wav"))
        lines = ("line 5", "line 6")
    samples = _rows_csv(tmp_path, rows, files)
    with pytest.raises(ValueError, match="one speaker and utterance"):
        load_registry(samples)
    db = tmp_path / "answers.sqlite"
    assert cli.main(_serve_argv(samples, db)) == 2
    err = capsys.readouterr().err
    assert all(line in err for line in lines) and "Traceback" not in err, err
    assert not db.exists()


def test_one_recording_may_serve_several_models_under_one_identity(tmp_path):
    files = {f"{u}.wav": b"RIFF" + u.encode() * 40 for u, _ in FOUR_VOICES}
    rows = [(u, s, m, f"{u}.wav") for m in ("m1", "m2") for u, s in FOUR_VOICES]
    assert len(load_registry(_rows_csv(tmp_path, rows, files))) == 8


def test_audio_counts_as_fetched_only_when_a_reply_carried_all_of_it(app_parts):
    """A HEAD, a probe range (Safari asks for bytes 0-1 first), a range without
    the start or a 416 sent no audio to hear: before, each counted as fetched."""
    registry, _, store, app = app_parts
    client = app.test_client()
    trial = register(client)["trial"]
    url = trial["audio"]
    path = store.trial_audio_path("r1", trial["trial_id"], "A")
    n = registry.files[path].size
    assert client.head(url["A"]).status_code == 200
    for header, status in {
        "bytes=0-0": 206,
        "bytes=0-1": 206,
        "bytes=1-": 206,
        f"bytes={n}-": 416,
    }.items():
        assert client.get(url["A"], headers={"Range": header}).status_code == status
    assert client.get(url["B"], headers={"Range": "bytes=0-"}).status_code == 206
    assert client.get(url["X"]).status_code == 200
    client.post("/api/answers", json={"trial_id": trial["trial_id"], "answer": "A"})
    assert [a["audio_fetched"] for a in store.answered_cells()] == ["BX"]


def test_answers_keep_the_order_of_the_trials(app_parts):
    """Decision (issue 26): only the rater's current trial can be answered, as the
    rater page does; answering ahead or skipping gets 409 and stores nothing."""
    _, _, store, app = app_parts
    client = app.test_client()
    register(client)
    conn = sqlite3.connect(store.path)
    first, second = (
        row[0]
        for row in conn.execute(
            "SELECT trial_id FROM trials WHERE rater_id='r1' ORDER BY seq LIMIT 2"
        )
    )
    ahead = client.post("/api/answers", json={"trial_id": second, "answer": "A"})
    assert ahead.status_code == 409 and "current trial" in ahead.get_json()["error"]
    assert store.answered_cells() == []
    for trial_id in (first, second):
        resp = client.post("/api/answers", json={"trial_id": trial_id, "answer": "B"})
        assert resp.status_code == 201
    again = client.post("/api/answers", json={"trial_id": first, "answer": "A"})
    assert again.status_code == 409 and "already" in again.get_json()["error"]


def test_requests_naming_another_host_are_refused(app_parts):
    """DNS rebinding: a page of another domain that resolves to the server sends
    its own name as Host. Decision (issue 26): IP addresses, localhost and the
    names of --allowed-host are served, any other name gets 400 (so invitation
    links on the admin page can only carry an allowed name)."""
    registry, design, store, _ = app_parts
    app = create_app(
        registry, store, design, TOKEN, allowed_hosts=("Lab.example.org",), **OPEN
    )
    client = app.test_client()
    statuses = {
        host: client.get("/healthz", headers={"Host": host}).status_code
        for host in (
            "localhost",
            "127.0.0.1:8765",
            "[::1]:8765",
            "lab.example.org",
            "rebound.example",
            "rebound.example:8765",
        )
    }
    assert statuses == {
        "localhost": 200,
        "127.0.0.1:8765": 200,
        "[::1]:8765": 200,
        "lab.example.org": 200,
        "rebound.example": 400,
        "rebound.example:8765": 400,
    }
    resp = client.get(f"/admin?token={TOKEN}", headers={"Host": "rebound.example"})
    assert resp.status_code == 400 and "--allowed-host" in resp.get_json()["error"]


def test_registration_limit_refuses_a_rate_that_is_not_a_number():
    from speechbrain_probe.listening.app import RateLimiter

    for rate in (float("nan"), -1.0, float("inf")):
        with pytest.raises(ValueError, match="registrations per minute"):
            RateLimiter(rate, burst=10)
    assert RateLimiter(0, burst=1).take("a") == RateLimiter(0, burst=1).take("a") == 0


@pytest.mark.parametrize(
    "option, value, named",
    [
        ("--port", "99999", "99999"),
        ("--port", "-1", "-1"),
        ("--register-per-minute", "nan", "nan"),
        ("--register-per-minute", "-5", "-5"),
        ("--stimuli-root", "/nonexistent-stimuli", "/nonexistent-stimuli"),
        ("--admin-token", " " * 20, "admin token"),
        ("--admin-token", "", "admin token"),
        ("--max-stimulus-mb", "0", "--max-stimulus-mb"),
        ("--trust-proxy", "proxy.example", "proxy.example"),
        ("--connection-limit", "100000000", "100000000"),
        ("--connection-limit", "0", "--connection-limit"),
    ],
)
def test_cli_serve_refuses_bad_settings_before_creating_the_database(
    samples, tmp_path, capsys, no_serving, option, value, named
):
    """Before: --port 99999 listened on 34463, nan or a negative rate turned the
    registration limit off, a missing --stimuli-root or a blank token passed."""
    db = tmp_path / "answers.sqlite"
    assert cli.main([*_serve_argv(samples, db), option, value]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1, err
    assert not db.exists()


def test_a_hard_link_to_a_file_outside_the_study_is_refused(
    tmp_path, capsys, no_serving
):
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF top secret " * 64)
    samples = _study_with_extra_row(tmp_path, "linked.wav")
    os.link(outside, samples.parent / "linked.wav")
    db = tmp_path / "answers.sqlite"
    assert cli.main(_serve_argv(samples, db)) == 2
    err = capsys.readouterr().err
    assert "line 6" in err and "hard link" in err, err
    assert not db.exists()


def test_stimuli_above_the_size_limit_or_empty_are_refused(
    tmp_path, capsys, no_serving
):
    """Every request for audio reads the whole file (to check its hash): eight
    2-byte ranges of a 150 MiB stimulus took the server to 2.3 GB."""
    samples = _study_with_extra_row(tmp_path, "long.wav")
    long = samples.parent / "long.wav"
    with open(long, "wb") as handle:
        handle.truncate(2 * 2**20)  # 2 MiB (sparse)
    assert len(load_registry(samples)) == 5  # below the default 16 MiB
    db = tmp_path / "answers.sqlite"
    assert cli.main(_serve_argv(samples, db, "--max-stimulus-mb", "1")) == 2
    err = capsys.readouterr().err
    assert "line 6" in err and "--max-stimulus-mb" in err, err
    long.write_bytes(b"")
    assert cli.main(_serve_argv(samples, db)) == 2
    assert "line 6" in (err := capsys.readouterr().err) and "empty" in err, err
    assert not db.exists()


@pytest.mark.parametrize("bad", ["nul", "latin1"])
def test_a_csv_with_a_nul_or_not_in_utf8_is_refused_naming_file_and_line(
    tmp_path, capsys, no_serving, bad
):
    samples = _study_with_extra_row(tmp_path, "x\x00y.wav" if bad == "nul" else "é.wav")
    if bad == "latin1":
        samples.write_bytes(samples.read_text().encode("latin-1"))
    db = tmp_path / "answers.sqlite"
    assert cli.main(_serve_argv(samples, db)) == 2
    err = capsys.readouterr().err
    assert f"{samples} line 6" in err and "Traceback" not in err, err
    assert not db.exists()


def test_cli_db_that_is_a_symbolic_link_to_nowhere_is_refused(
    samples, tmp_path, capsys, no_serving
):
    """Before, SQLite created the link's target with mode 0644."""
    db = tmp_path / "answers.sqlite"
    os.symlink(tmp_path / "gone" / "real.sqlite", db)
    (tmp_path / "gone").mkdir()
    assert cli.main(_serve_argv(samples, db)) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "symbolic link" in err, err
    assert not (tmp_path / "gone" / "real.sqlite").exists()


def test_a_port_in_use_leaves_no_database_and_a_retry_starts(
    samples, tmp_path, capsys, no_serving
):
    """Before, the database was created first: a retry with other settings was
    refused as 'a different design'."""
    import socket

    db = tmp_path / "answers.sqlite"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = _serve_argv(samples, db)
        argv[argv.index("--port") + 1] = str(port)
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert f"127.0.0.1:{port}" in err and "--port" in err, err
        assert not db.exists()
    with pytest.raises(AssertionError, match="starting the server"):
        cli.main(_serve_argv(samples, db, "--seed", "7"))
    assert "different design" not in capsys.readouterr().err
    assert db.exists()


@contextlib.contextmanager
def _read_only(path: Path):
    """``path`` (a file or folder) read-only for this process, even as root (the
    immutable attribute, where chattr works), restored on leaving."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)]).returncode:
        pytest.skip("no way to make a file read-only for root here")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


def test_serve_names_a_read_only_database(app_parts, samples, tmp_path, capsys):
    _, _, store, _ = app_parts
    store.close()
    with _read_only(store.path):
        assert cli.main(_serve_argv(samples, store.path)) == 2
    err = capsys.readouterr().err
    assert str(store.path) in err and "read-only" in err, err


def test_results_reads_an_archived_read_only_database_without_writing(
    app_parts, tmp_path, capsys
):
    _, _, store, app = app_parts
    answer_trials(app, n=1)
    store.close()  # the last connection: SQLite folds the WAL into the file
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(store.path, archive / "answers.sqlite")
    before = (archive / "answers.sqlite").read_bytes()
    out = tmp_path / "out"
    with _read_only(archive):
        argv = [
            "results",
            "--db",
            str(archive / "answers.sqlite"),
            "--out-dir",
            str(out),
        ]
        assert cli.main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in archive.iterdir()) == ["answers.sqlite"]
    assert (archive / "answers.sqlite").read_bytes() == before
    assert len(list(csv.DictReader((out / "answers.csv").open()))) == 1


def test_without_the_resource_module_the_open_file_limit_is_left_alone(
    monkeypatch, caplog
):
    """Windows has no ``resource``: serve skips raising the open-file limit,
    saying so, instead of failing to import its server."""
    from speechbrain_probe.listening import server

    monkeypatch.setitem(sys.modules, "resource", None)
    with caplog.at_level("WARNING", logger="speechbrain_probe.listening"):
        assert server.reserve_descriptors(threads=4, connection_limit=100) == 100
    assert "limit of open files is left as it is" in caplog.text
