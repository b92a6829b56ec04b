"""`python -m speechbrain_probe.demo --quick --corpus-only`: builds the corpus and reports it."""

import pytest

from speechbrain_probe import demo
from speechbrain_probe.data import synthetic


def test_demo_quick_builds_and_reports(tmp_path, monkeypatch, capsys):
    # the quick demo on the tiny corpus: 4/2/4 speakers, 4/2/2 utterances each
    monkeypatch.setitem(synthetic.PRESETS, "quick", synthetic.PRESETS["tiny"])
    args = ["--quick", "--corpus-only", "--data-dir", str(tmp_path)]
    args += ["--results-dir", str(tmp_path / "results")]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    corpus = tmp_path / "synthetic_quick"
    assert str(corpus.resolve()) in out
    assert (corpus / "corpus.json").is_file()
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line}
    assert lines["train"][:2] == ["4", "16"]  # speakers, utterances
    assert lines["test"][:2] == ["4", "8"]
    assert lines["test_snr0"][:2] == ["4", "8"]
    assert float(lines["train"][2]) > 0  # minutes
    # a second run reuses the corpus
    assert demo.main(args) == 0
    assert "train" in capsys.readouterr().out


def test_demo_stops_on_a_corpus_of_other_settings(tmp_path, monkeypatch):
    """A newer preset (the quick one changed on 2026-12-06) meets an existing
    corpus and results: the demo names both folders to delete, before any
    stage could reuse models trained on the old corpus, and deletes nothing."""
    monkeypatch.setitem(synthetic.PRESETS, "quick", synthetic.PRESETS["tiny"])
    args = ["--quick", "--corpus-only", "--data-dir", str(tmp_path)]
    args += ["--results-dir", str(tmp_path / "results")]
    assert demo.main(args) == 0
    record = tmp_path / "results" / "demo_quick" / "corpus.json"
    assert record.is_file()
    newer = dict(synthetic.PRESETS["tiny"], train_utts_per_speaker=5)
    monkeypatch.setitem(synthetic.PRESETS, "quick", newer)
    with pytest.raises(SystemExit) as stop:
        demo.main(args)
    message = str(stop.value)
    assert "made from another corpus" in message
    assert str(tmp_path / "synthetic_quick") in message
    assert str(tmp_path / "results" / "demo_quick") in message
    assert (tmp_path / "synthetic_quick" / "corpus.json").is_file()
    # results of an older version have no record: the corpus itself stops it
    record.unlink()
    with pytest.raises(SystemExit) as stop:
        demo.main(args)
    assert "already holds a corpus built with other settings" in str(stop.value)
    assert str(tmp_path / "results" / "demo_quick") in str(stop.value)
