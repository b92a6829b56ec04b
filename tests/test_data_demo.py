"""`python -m speechbrain_probe.demo --quick --corpus-only`: builds the corpus and reports it."""

from speechbrain_probe import demo
from speechbrain_probe.data import synthetic

TINY = dict(
    num_train_speakers=3,
    num_dev_speakers=1,
    num_test_speakers=2,
    train_utts_per_speaker=2,
    dev_utts_per_speaker=2,
    test_utts_per_speaker=2,
    num_train_noises=1,
    num_test_noises=1,
    noise_seconds=2.0,
)


def test_demo_quick_builds_and_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(synthetic.PRESETS, "quick", TINY)
    assert demo.main(["--quick", "--corpus-only", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    corpus = tmp_path / "synthetic_quick"
    assert str(corpus.resolve()) in out
    assert (corpus / "corpus.json").is_file()
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line}
    assert lines["train"][:2] == ["3", "6"]  # speakers, utterances
    assert lines["test"][:2] == ["2", "4"]
    assert lines["test_snr0"][:2] == ["2", "4"]
    assert float(lines["train"][2]) > 0  # minutes
    # a second run reuses the corpus
    assert demo.main(["--quick", "--corpus-only", "--data-dir", str(tmp_path)]) == 0
    assert "train" in capsys.readouterr().out
