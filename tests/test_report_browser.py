"""The listening page in a real headless Chromium, opened from disk (file://).

Skips only when /usr/bin/chromium is absent (CI installs it, see .ci/run).
"""

import csv
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from speechbrain_probe.report.build import build_report
from tests.chromium import ARGS, CHROMIUM
from tests.example_results import make_example_results

EVIL_UTT = 'u2 <img src=x onerror=alert(1)> "&amp;'


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt install chromium)"
)
def test_listening_page_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    seconds = 0.4
    make_example_results(
        tmp_path, n_utts=2, conditions=("clean", "snr0"), seconds=seconds
    )
    # Give the second utterance an id full of markup: the page must show it as text.
    samples = tmp_path / "samples.csv"
    with open(samples, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["utt_id"] == "spk1-utt1":
            row["utt_id"] = EVIL_UTT
    with open(samples, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    page_path = build_report(tmp_path, verbose=False)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            problems, requests = [], []
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.on(
                "dialog",
                lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()),
            )
            page.on("console", lambda m: m.type == "error" and problems.append(m.text))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.resolve().as_uri())

            utt_options = page.eval_on_selector_all(
                "#utterance option", "os => os.map(o => [o.value, o.textContent])"
            )
            assert [value for value, _ in utt_options] == sorted(
                ["spk0-utt0", EVIL_UTT]
            )
            assert page.eval_on_selector_all(
                "#condition option", "os => os.map(o => o.value)"
            ) == ["clean", "snr0"]
            # Default view: first utterance, clean input: no noise, no mixture.
            assert page.locator("#inputs audio").count() == 2

            # Choose the other utterance and the 0 dB condition.
            page.select_option("#utterance", value=EVIL_UTT)
            page.select_option("#condition", value="snr0")
            assert (
                page.locator("#utterance option:checked")
                .text_content()
                .startswith(EVIL_UTT)
            )
            assert "utt=" in page.evaluate("location.hash")

            audio = page.locator("audio")
            assert audio.count() == 4 + 2 * 6 + 2 * 5
            srcs = audio.evaluate_all("els => els.map(a => a.currentSrc || a.src)")
            for src in srcs:
                assert src.startswith("file://"), src
                target = Path(unquote(urlparse(src).path))
                assert target.is_file(), src
                assert tmp_path.resolve() in target.resolve().parents
            # The reconstructions are those of the chosen utterance and condition.
            recs = page.locator("#layers audio").evaluate_all(
                "els => els.map(a => a.getAttribute('src'))"
            )
            assert all(
                r.startswith("samples/snr0/") and r.endswith("/spk1-utt1.wav")
                for r in recs
            )
            # Each clip shows its layer's scores for the chosen condition.
            scores = page.locator("#layers td .score").all_text_contents()
            assert len(scores) == len(recs) and all("STOI" in t for t in scores)
            mixture = page.locator("#inputs audio[title^='mixture']").get_attribute(
                "src"
            )
            assert mixture == "samples/snr0/mixture/spk1-utt1.wav"

            # Every clip loads in the browser: metadata read, duration as written.
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('audio'))"
                ".every(a => a.readyState >= 1 && a.duration > 0)",
                timeout=20000,
            )
            durations = audio.evaluate_all("els => els.map(a => a.duration)")
            assert all(abs(d - seconds) < 0.01 for d in durations), durations
            images = page.locator("img").evaluate_all(
                "els => els.map(i => [i.complete, i.naturalWidth])"
            )
            assert len(images) == 5 and all(ok and width > 100 for ok, width in images)

            # The markup in the id stayed text: no injected element, no alert.
            assert page.locator("img[src='x']").count() == 0
            assert problems == []
            assert all(u.startswith(("file://", "data:", "about:")) for u in requests)
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs /usr/bin/chromium (apt install chromium)"
)
def test_generic_report_shows_every_figure_in_chromium(tmp_path, monkeypatch):
    """A study of one Whisper-like model, built from a relative folder: in the
    browser every figure loads, and the listening table is in model order."""
    from playwright.sync_api import sync_playwright

    from speechbrain_probe.study_info import StudyModel

    layers = ("cnn", "layer1", "layer2", "layer3", "layer4")
    make_example_results(
        tmp_path / "study",
        n_utts=1,
        conditions=("clean", "snr5"),
        seconds=0.1,
        models=[StudyModel("whisper_tiny", layers, source="openai/whisper-tiny")],
    )
    monkeypatch.chdir(tmp_path)
    page_path = build_report("study", verbose=False).resolve()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            problems = []
            page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
            page.goto(page_path.as_uri())
            page.wait_for_function(
                "() => Array.from(document.images).every(i => i.complete)",
                timeout=10000,
            )
            images = page.locator("img").evaluate_all(
                "els => els.map(i => [i.getAttribute('src'), i.naturalWidth])"
            )
            assert len(images) == 5
            assert all(width > 0 for _, width in images), images
            header = page.locator("#layers th").all_text_contents()
            assert header[: 1 + len(layers)] == ["model", *layers]
            assert "openai/whisper-tiny" in page.locator("#layers caption").inner_text()
            assert page.eval_on_selector_all(
                "#condition option", "os => os.map(o => o.textContent)"
            ) == ["clean", "5 dB"]
            shot = page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert len(shot) > 10000
            assert problems == []
        finally:
            browser.close()
