"""build_report and the listening page: it parses, links only existing files,
escapes text, and rebuilding gives the same files."""

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from speechbrain_probe.report.__main__ import main
from speechbrain_probe.report.build import build_report
from speechbrain_probe.study_info import StudyModel
from tests.example_results import make_example_results

VOID = {"meta", "link", "img", "br", "hr", "input", "source", "col", "wbr"}
EVIL = '<script>alert("x")</script>&amp;"\''


class _Page(HTMLParser):
    """Collects linked files and checks that tags nest properly."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.links, self.external = [], [], [], []
        self.scripts, self._in_script, self.data = [], None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            if attrs.get(key):
                self.links.append(attrs[key])
        if tag == "link" or (tag == "script" and attrs.get("src")):
            self.external.append(tag)
        if tag == "script":
            self._in_script = attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()
        self._in_script = None

    def handle_data(self, data):
        if self._in_script is not None:
            self.scripts.append((self._in_script, data))


def _parse(text):
    page = _Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    make_example_results(folder, seed=2, n_utts=2, seconds=0.2)
    page = build_report(folder, note="example data", verbose=False)
    return folder, page


def _embedded_data(page):
    for attrs, text in page.scripts:
        if attrs.get("id") == "report-data":
            return json.loads(text)
    raise AssertionError("no embedded data")


def _audio_urls(data):
    for by_condition in data["audio"].values():
        for slot in by_condition.values():
            for key, value in slot.items():
                if key == "layers":
                    for by_layer in value.values():
                        yield from by_layer.values()
                else:
                    yield value


def test_build_report_writes_everything(built):
    folder, page = built
    assert page == folder / "report.html"
    tables = sorted(p.name for p in (folder / "tables").iterdir())
    assert tables == sorted(
        f"{stem}.{ext}"
        for stem in (
            "table1_asr",
            "table2_eer_ge2e",
            "table2_eer_ecapa",
            "table2_stoi",
            "table2_pesq",
        )
        for ext in ("csv", "md")
    )
    figures = sorted(p.name for p in (folder / "figures").iterdir())
    assert figures == [
        "eer_vs_layer_ecapa.png",
        "eer_vs_layer_ge2e.png",
        "fig3_mel_grid.png",
        "fig4_pesq_robust_vs_baseline.png",
        "fig4_stoi_robust_vs_baseline.png",
    ]
    assert all((folder / "figures" / f).stat().st_size > 5000 for f in figures)


def test_page_parses_and_is_self_contained(built):
    folder, page_path = built
    text = page_path.read_text(encoding="utf-8")
    page = _parse(text)
    assert page.errors == [] and page.stack == []
    assert page.external == []  # inline script and style only
    assert not re.search(r"(?:https?:)?//", " ".join(page.links))
    assert "<table" in text and text.count('class="results"') == 5


def test_page_references_only_existing_files(built):
    folder, page_path = built
    page = _parse(page_path.read_text(encoding="utf-8"))
    data = _embedded_data(page)
    urls = list(page.links) + list(_audio_urls(data))
    with open(folder / "samples.csv", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert len(urls) >= len(listed)  # every sample, plus the figures
    for url in urls:
        assert not url.startswith(("/", "file:")), url
        target = (folder / unquote(url)).resolve()
        assert target.is_file(), url
        assert folder.resolve() in target.parents
    figures = [u for u in page.links if u.endswith(".png")]
    assert len(figures) == 5
    # Every (utterance, condition) has the reconstruction of every layer of every model.
    slot = data["audio"]["spk0-utt0"]["snr0"]
    assert set(slot) == {"original", "noise", "mixture", "copy_synthesis", "layers"}
    assert sum(len(v) for v in slot["layers"].values()) == 2 * 6 + 2 * 5
    scores = data["scores"]["layers"]["vgg_lstm_robust"]["snr0"]
    assert set(scores) == {"cnn1", "cnn2", "cnn4", "blstm1", "blstm3", "blstm5"}
    assert all(t.count("\n") == 3 and "%" in t for t in scores.values())
    assert [m["id"] for m in data["models"]] == [
        "vgg_lstm_baseline",
        "vgg_lstm_robust",
        "blstm_baseline",
        "blstm_robust",
    ]


def test_missing_audio_is_left_out_and_named(tmp_path):
    make_example_results(tmp_path, n_utts=1, conditions=("snr0",), seconds=0.1)
    # where run_study puts a reconstruction: samples/<condition>/<model>/<layer>/
    gone = tmp_path / "samples" / "snr0" / "blstm_robust" / "blstm3" / "spk0-utt0.wav"
    gone.unlink()
    (tmp_path / "metrics.csv").unlink()  # no metric figures: keeps the test fast
    (tmp_path / "excluded.csv").write_text(
        "utt_id,metric,reason\nu1,stoi,shorter than 0.5 s\nu2,stoi,shorter than 0.5 s\n"
        "u2,pesq,silent reconstruction\n"
    )
    page = build_report(tmp_path, verbose=False)
    text = page.read_text(encoding="utf-8")
    counts = (tmp_path / "tables" / "excluded.csv").read_text().splitlines()
    assert counts == [
        "metric,reason,entries,utterances",
        "pesq,silent reconstruction,1,1",
        "stoi,shorter than 0.5 s,2,2",
    ]
    assert "Excluded from the metrics" in text
    data = _embedded_data(_parse(text))
    assert "blstm3" not in data["audio"]["spk0-utt0"]["snr0"]["layers"]["blstm_robust"]
    assert "1 listed file(s) do not exist" in text and "blstm3/spk0-utt0.wav" in text


def test_text_from_the_results_is_escaped(tmp_path):
    make_example_results(tmp_path, n_utts=1, conditions=("clean",), seconds=0.1)
    samples = tmp_path / "samples.csv"
    rows = list(csv.DictReader(open(samples, newline="")))
    for row in rows:
        row["utt_id"] = EVIL
        row["spk_id"] = "</script><b>spk"
    with open(samples, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (tmp_path / "metrics.csv").unlink()  # tables escape text: test_report_tables.py
    page = build_report(
        tmp_path, title="A <i>title</i> & more", note="<img src=x>", verbose=False
    )
    text = page.read_text(encoding="utf-8")
    assert "<script>alert" not in text
    assert "</script><b>" not in text
    assert (
        "<i>title</i>" not in text and "A &lt;i&gt;title&lt;/i&gt; &amp; more" in text
    )
    assert "<img src=x>" not in text and "&lt;img src=x&gt;" in text
    parsed = _parse(text)
    assert parsed.errors == [] and parsed.stack == []
    data = _embedded_data(parsed)
    assert [u["id"] for u in data["utterances"]] == [EVIL]
    assert data["utterances"][0]["spk"] == "</script><b>spk"


def test_rebuilding_is_idempotent(built):
    folder, page_path = built
    before = {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".html", ".csv", ".md", ".png")
    }
    assert main([str(folder), "--note", "example data", "--quiet"]) == 0
    after = {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.suffix in (".html", ".csv", ".md", ".png")
    }
    assert before == after
    assert not [p for p in folder.rglob(".*.tmp")]


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main([str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "no result files" in capsys.readouterr().err


def test_cli_prints_where_the_report_is(tmp_path, capsys):
    make_example_results(tmp_path, n_utts=1, conditions=("clean",), seconds=0.1)
    (tmp_path / "samples.csv").unlink()  # tables and figures only
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert str((tmp_path / "report.html").resolve()) in out
    text = Path(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No audio: there is no samples.csv" in text
    assert text.count('class="results"') == 1 + 4  # Table 1, Table 2 x 4 metrics


def test_a_relative_results_folder_keeps_its_figures(tmp_path, monkeypatch):
    """The demo passes a relative study folder: the page must still link every
    figure (it once resolved them against its own folder and dropped them all)."""
    make_example_results(
        tmp_path / "study", n_utts=1, conditions=("clean",), seconds=0.1
    )
    monkeypatch.chdir(tmp_path)
    page = build_report("study", verbose=False)
    text = page.read_text(encoding="utf-8")
    assert "do not exist" not in text
    figures = [u for u in _parse(text).links if u.endswith(".png")]
    assert len(figures) == 5 and all(u.startswith("figures/") for u in figures)


# --- a study of other models, built from another folder ---------------------


def _image_files(page_path):
    text = page_path.read_text(encoding="utf-8")
    return [
        page_path.parent / unquote(u) for u in _parse(text).links if u.endswith(".png")
    ]


def test_a_generic_study_from_a_relative_folder_shows_every_figure(
    tmp_path, monkeypatch
):
    """build_report("results/demo/study") run from the folder above: every
    <img> of the page is an existing file (the demo's page once pointed at
    results/demo/study/results/demo/study/figures/...), and still is after the
    folder moves (links are relative to the page)."""
    make_example_results(
        tmp_path / "results" / "demo" / "study",
        n_utts=1,
        conditions=("clean", "snr5"),
        seconds=0.1,
        models=[
            StudyModel(
                "whisper_tiny",
                ("cnn", "layer1", "layer2", "layer3", "layer4"),
                source="openai/whisper-tiny",
                label="Whisper tiny",
            ),
            StudyModel("wav2vec2", ("layer1", "layer2", "layer3")),
        ],
    )
    monkeypatch.chdir(tmp_path)
    page = build_report("results/demo/study", verbose=False)
    text = page.read_text(encoding="utf-8")
    assert "do not exist" not in text
    images = _image_files(page)
    assert sorted(p.name for p in images) == [
        "eer_vs_layer_ecapa.png",
        "eer_vs_layer_ge2e.png",
        "fig3_mel_grid.png",
        "pesq_vs_layer.png",
        "stoi_vs_layer.png",
    ]  # no robust-vs-baseline figure: the study has no such pair
    assert all(p.is_file() for p in images)
    tables = {p.name for p in (page.parent / "tables").glob("*.csv")}
    assert "table2_stoi.csv" not in tables
    assert {"layers_stoi_whisper_tiny.csv", "layers_stoi_wav2vec2.csv"} <= tables
    data = _embedded_data(_parse(text))
    assert [c["label"] for c in data["conditions"]] == ["clean", "5 dB"]
    whisper = data["models"][0]
    assert whisper["layers"] == ["cnn", "layer1", "layer2", "layer3", "layer4"]
    assert whisper["group_label"] == "Whisper tiny (openai/whisper-tiny)"
    assert "Whisper tiny (openai/whisper-tiny)" in text  # named on the page
    moved = tmp_path / "elsewhere"
    (tmp_path / "results").rename(moved)
    assert all(
        p.is_file() for p in _image_files(moved / "demo" / "study" / "report.html")
    )
