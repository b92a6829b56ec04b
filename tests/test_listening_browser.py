"""End-to-end test of the listening test in a real headless Chromium.

A rater registers with an invitation link, plays A, B and X, answers by clicking
and by keyboard, sees the progress, finishes; the database holds exactly those
answers. The admin page shows the results and the figure, and creates an
invitation code with which another rater registers. Skips only when
/usr/bin/chromium is absent.
"""

from __future__ import annotations

import os
import re
import sqlite3

import pytest
from playwright.sync_api import expect, sync_playwright

from benchmarks.listening_load import ServerProcess, demo_samples
from tests.chromium import ARGS, CHROMIUM

TOKEN = "browser-test-admin-token-42"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed"
    ),
]


@pytest.fixture
def server(tmp_path):
    samples = demo_samples(tmp_path / "stimuli", ("cnn1", "blstm3"), 0.3, 3, 2)
    extra = ["--trials-per-layer", "2", "--admin-token", TOKEN]
    with ServerProcess(
        samples, tmp_path / "answers.sqlite", extra=extra, invites=2
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def listen_to_all(page):
    expect(page.locator("#answer-A")).to_be_disabled()
    for slot in "ABX":
        page.click(f"#play-{slot}")
        expect(page.locator(f"#play-{slot}")).to_have_class(
            re.compile(r"\bheard\b"), timeout=10_000
        )
    expect(page.locator("#answer-A")).to_be_enabled()


def test_rater_completes_trials_in_chromium_and_db_holds_them(
    server, browser, tmp_path
):
    base = f"http://127.0.0.1:{server.port}"
    page = browser.new_page()
    bad = []
    page.on(
        "response", lambda r: bad.append((r.status, r.url)) if r.status >= 500 else None
    )
    # without a code, registration is refused with a clear message
    page.goto(base + "/")
    expect(page.locator("#invite")).to_be_visible()
    page.fill("#rater-id", "web1")
    page.fill("#invite", "AAAA-BBBB-CCCC-DDDD")
    page.click("#start")
    expect(page.locator("#message")).to_contain_text("invitation code is required")
    # the invitation link fills in the code and leaves the address bar
    page.goto(f"{base}/#invite={server.invites[0]}")
    expect(page.locator("#invite")).to_have_value(server.invites[0])
    assert "invite" not in page.url
    page.fill("#rater-id", "web1")
    page.click("#start")
    expect(page.locator("#trial")).to_be_visible()
    expect(page.locator("#progress-text")).to_have_text("0 / 4 answered")

    # pressing an answer key before listening stores nothing
    page.keyboard.press("1")
    listen_to_all(page)
    page.screenshot(path=str(tmp_path / "rater_page.png"), full_page=True)
    choices = []
    for i, (how, choice) in enumerate([("click", "A"), ("click", "B"), ("key 2", "B")]):
        if i:
            listen_to_all(page)
        if how == "click":
            page.click(f"#answer-{choice}")
        else:
            page.keyboard.press("2")
        choices.append(choice)
        expect(page.locator("#progress-text")).to_have_text(f"{i + 1} / 4 answered")

    conn = sqlite3.connect(server.db)
    rows = conn.execute(
        "SELECT a.rater_id, a.answer, a.response_ms, t.seq FROM answers a "
        "JOIN trials t ON t.trial_id = a.trial_id ORDER BY t.seq"
    ).fetchall()
    assert [r[0] for r in rows] == ["web1"] * 3
    assert [r[1] for r in rows] == choices
    assert [r[3] for r in rows] == [0, 1, 2]
    assert all(r[2] is not None and r[2] >= 0 for r in rows)

    # the page never shows who is who
    # (the audio addresses carry random tokens, which may spell anything)
    html = re.sub(r"/audio/[A-Za-z0-9_-]+/", "/audio/TOKEN/", page.content())
    assert "/audio/TOKEN/A" in html
    assert "spk" not in html and "cnn1" not in html and "blstm3" not in html

    # the last trial, then the thank-you page
    listen_to_all(page)
    page.click("#answer-A")
    expect(page.locator("#finished")).to_be_visible()
    expect(page.locator("#trial")).to_be_hidden()
    assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4

    # a reload resumes the session (cookie) and stays finished
    page.reload()
    expect(page.locator("#finished")).to_be_visible()

    # another browser context is another rater: no session, sees no one's data
    other = browser.new_context().new_page()
    other.goto(base + "/")
    expect(other.locator("#register")).to_be_visible()
    response = other.request.get(base + "/api/state")
    assert response.status == 401
    assert other.request.get(base + "/admin/her.csv").status == 403
    assert bad == []


def test_admin_page_shows_results_and_figure_in_chromium(server, browser):
    base = f"http://127.0.0.1:{server.port}"
    page = browser.new_page()
    page.goto(base + "/")
    page.fill("#invite", server.invites[1].lower())  # case and dashes do not matter
    page.fill("#rater-id", "web2")
    page.click("#start")
    listen_to_all(page)
    page.click("#answer-B")
    expect(page.locator("#progress-text")).to_have_text("1 / 4 answered")

    admin = browser.new_page()
    admin.goto(f"{base}/admin?token={TOKEN}")
    assert admin.url == base + "/admin"  # token moved out of the URL into a cookie
    expect(admin.locator("body")).to_contain_text("1 raters, 1 answers")
    image = admin.locator("img.figure")
    expect(image).to_be_visible()
    width = image.evaluate("img => img.complete ? img.naturalWidth : 0")
    assert width > 100

    # the admin creates an invitation code on the page (POST form, same origin)
    admin.fill("input[name=count]", "1")
    admin.fill("input[name=label]", "browser test")
    admin.click("#create-invites")
    link = admin.locator("#new-codes a").first
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert "#invite=" in href
    expect(admin.locator("body")).to_contain_text("browser test")
    # and a new rater registers with it
    rater = browser.new_context().new_page()
    rater.goto(href)
    rater.fill("#rater-id", "web3")
    rater.click("#start")
    expect(rater.locator("#trial")).to_be_visible()
    admin.goto(base + "/admin")
    expect(admin.locator("body")).to_contain_text("web3")
