"""`python -m speechbrain_probe.demo --quick --corpus-only`: builds the corpus and reports it."""

from speechbrain_probe import demo
from speechbrain_probe.data import synthetic


def test_demo_quick_builds_and_reports(tmp_path, monkeypatch, capsys):
    # the quick demo on the tiny corpus: 4/2/4 speakers, 4/2/2 utterances each
    monkeypatch.setitem(synthetic.PRESETS, "quick", synthetic.PRESETS["tiny"])
    assert demo.main(["--quick", "--corpus-only", "--data-dir", str(tmp_path)]) == 0
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
    assert demo.main(["--quick", "--corpus-only", "--data-dir", str(tmp_path)]) == 0
    assert "train" in capsys.readouterr().out
