"""HTML, CSS and JavaScript of the rater and admin pages (served by the app).

Kept as Python strings so that they ship inside the package without package
data; the script and style are separate responses so that the pages run under a
strict Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import html

__all__ = ["RATER_HTML", "APP_CSS", "APP_JS", "admin_html"]

RATER_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Listening test: which speaker?</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<main>
  <h1>Which speaker is X?</h1>
  <p class="lead">Each trial has three recordings. <b>A</b> and <b>B</b> are two different
  speakers. <b>X</b> is a different sentence spoken by one of them. Listen to all three,
  then say whose voice X is. Some recordings are heavily distorted: go with your best
  guess. Headphones help.</p>

  <section id="register" hidden>
    <form id="register-form">
      <div id="invite-row" hidden>
        <label for="invite">Invitation code</label>
        <input id="invite" name="invite" maxlength="40" autocomplete="off"
               spellcheck="false" placeholder="XXXX-XXXX-XXXX-XXXX">
      </div>
      <label for="rater-id">Your rater code</label>
      <input id="rater-id" name="rater_id" required maxlength="64"
             pattern="[A-Za-z0-9_.\\-]{1,64}" autocomplete="off"
             placeholder="e.g. r017">
      <button type="submit" id="start">Start</button>
    </form>
    <p class="hint">Rater code: letters, digits, dot, dash and underscore. Use the
    codes you were given.</p>
  </section>

  <section id="trial" hidden>
    <div class="progress-row">
      <progress id="progress" max="1" value="0"></progress>
      <span id="progress-text" aria-live="polite"></span>
    </div>
    <div class="players">
      <button type="button" class="play" data-slot="A" id="play-A">&#9654; A</button>
      <button type="button" class="play" data-slot="B" id="play-B">&#9654; B</button>
      <button type="button" class="play x" data-slot="X" id="play-X">&#9654; X</button>
    </div>
    <p class="hint" id="listen-hint">Play A, B and X to the end to answer.</p>
    <div class="answers">
      <button type="button" class="answer" data-answer="A" id="answer-A" disabled>
        X is speaker <b>A</b> <kbd>1</kbd></button>
      <button type="button" class="answer" data-answer="B" id="answer-B" disabled>
        X is speaker <b>B</b> <kbd>2</kbd></button>
    </div>
  </section>

  <section id="finished" hidden>
    <h2>Thank you!</h2>
    <p>All your answers are saved. You can close this page.</p>
  </section>

  <p id="message" role="alert"></p>
  <audio id="audio-A" preload="auto"></audio>
  <audio id="audio-B" preload="auto"></audio>
  <audio id="audio-X" preload="auto"></audio>
</main>
</body>
</html>
"""

APP_CSS = """
:root { --accent: #1f5fa8; --ok: #1d7a3a; --muted: #5a6270; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       background: #f4f6f9; color: #1b1f24; line-height: 1.5; }
main { max-width: 720px; margin: 2.5rem auto; background: #fff; padding: 2rem 2.5rem;
       border-radius: 12px; box-shadow: 0 2px 12px rgba(0,0,0,.08); }
h1 { margin-top: 0; font-size: 1.6rem; }
.lead { color: #333; }
.hint { color: var(--muted); font-size: .9rem; }
label { display: block; font-weight: 600; margin-bottom: .3rem; }
input { font-size: 1.1rem; padding: .5rem .7rem; border: 1px solid #b8c0cc; border-radius: 6px;
        width: 14rem; }
#invite { width: 16rem; font-family: ui-monospace, monospace; margin-bottom: .8rem; }
#invite-row label { margin-top: 0; }
.codes { font-family: ui-monospace, monospace; }
form.invites input { width: 6rem; margin-right: .8rem; }
form.invites input[name=label] { width: 12rem; }
button { font-size: 1.1rem; border-radius: 8px; border: 1px solid var(--accent); cursor: pointer;
         padding: .6rem 1.2rem; background: #fff; color: var(--accent); }
button:disabled { opacity: .4; cursor: not-allowed; }
#start { background: var(--accent); color: #fff; margin-left: .5rem; }
.progress-row { display: flex; align-items: center; gap: 1rem; margin: 1rem 0 1.5rem; }
progress { flex: 1; height: 1rem; }
.players { display: flex; gap: 1rem; justify-content: center; margin: 1rem 0; }
.play { min-width: 7rem; font-size: 1.4rem; font-weight: 600; }
.play.x { border-width: 2px; }
.play.playing { background: var(--accent); color: #fff; }
.play.heard::after { content: " \\2713"; color: var(--ok); }
.play.playing.heard::after { color: #fff; }
.answers { display: flex; gap: 1rem; justify-content: center; margin-top: 1.5rem; }
.answer { min-width: 14rem; padding: .9rem 1.2rem; background: var(--accent); color: #fff; }
kbd { font-size: .75rem; border: 1px solid rgba(255,255,255,.6); border-radius: 4px;
      padding: 0 .3rem; margin-left: .4rem; }
#message { color: #a32020; min-height: 1.5rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #e1e5ea; text-align: right; }
th:nth-child(-n+3), td:nth-child(-n+3) { text-align: left; }
img.figure { max-width: 100%; margin-top: 1rem; }
"""

APP_JS = """
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let trial = null, heard = {}, readyAt = null, busy = false;

  function show(section) {
    for (const s of ["register", "trial", "finished"]) $(s).hidden = s !== section;
  }
  function message(text) { $("message").textContent = text || ""; }

  async function api(method, url, body) {
    const opts = { method, headers: {}, credentials: "same-origin" };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const res = await fetch(url, opts);
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    return { status: res.status, data };
  }

  function render(state) {
    const total = state.total || 0, done = state.done || 0;
    $("progress").max = Math.max(total, 1);
    $("progress").value = done;
    $("progress-text").textContent = done + " / " + total + " answered";
    if (!state.trial) { show("finished"); return; }
    trial = state.trial;
    heard = { A: false, B: false, X: false };
    readyAt = null;
    for (const slot of ["A", "B", "X"]) {
      const audio = $("audio-" + slot);
      audio.pause();
      audio.src = trial.audio[slot];
      $("play-" + slot).classList.remove("heard", "playing");
    }
    setAnswerable(false);
    show("trial");
  }

  function setAnswerable(on) {
    $("answer-A").disabled = !on;
    $("answer-B").disabled = !on;
    $("listen-hint").hidden = on;
  }

  async function refresh() {
    const { status, data } = await api("GET", "/api/state");
    if (status === 401) {
      const invite = data.registration === "invite";
      $("invite-row").hidden = !invite;
      $("invite").required = invite;
      show("register");
      return;
    }
    if (status !== 200) { message(data.error || ("error " + status)); return; }
    message("");
    render(data);
  }

  function play(slot) {
    for (const other of ["A", "B", "X"]) {
      if (other !== slot) {
        $("audio-" + other).pause();
        $("play-" + other).classList.remove("playing");
      }
    }
    const audio = $("audio-" + slot);
    audio.currentTime = 0;
    $("play-" + slot).classList.add("playing");
    audio.play().catch((e) => message("cannot play audio: " + e.message));
  }

  function ended(slot) {
    $("play-" + slot).classList.remove("playing");
    $("play-" + slot).classList.add("heard");
    heard[slot] = true;
    if (heard.A && heard.B && heard.X && readyAt === null) {
      readyAt = performance.now();
      setAnswerable(true);
    }
  }

  async function answer(choice) {
    if (busy || !trial || readyAt === null) return;
    busy = true;
    setAnswerable(false);
    const body = { trial_id: trial.trial_id, answer: choice,
                   response_ms: Math.round(performance.now() - readyAt) };
    try {
      const { status, data } = await api("POST", "/api/answers", body);
      if (status === 201) { message(""); render(data); }
      else if (status === 409) { await refresh(); }
      else { message(data.error || ("error " + status)); setAnswerable(true); }
    } catch (e) {
      message("Network problem, your answer may not be saved: try again.");
      setAnswerable(true);
    } finally {
      busy = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("register-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { rater_id: $("rater-id").value.trim() };
      if (!$("invite-row").hidden) body.invite = $("invite").value.trim();
      const { status, data } = await api("POST", "/api/raters", body);
      if (status === 201) { message(""); render(data); }
      else { message(data.error || ("error " + status)); }
    });
    // an invitation link (/#invite=CODE): the fragment never reaches the server
    function takeInvite() {
      const m = /(?:^#|&)invite=([A-Za-z0-9-]{1,40})/.exec(location.hash);
      if (m) {
        $("invite").value = m[1];
        history.replaceState(null, "", location.pathname);
      }
    }
    window.addEventListener("hashchange", takeInvite);
    takeInvite();
    for (const slot of ["A", "B", "X"]) {
      $("play-" + slot).addEventListener("click", () => play(slot));
      $("audio-" + slot).addEventListener("ended", () => ended(slot));
      $("audio-" + slot).addEventListener("error", () => {
        if ($("audio-" + slot).getAttribute("src")) message("audio " + slot + " failed to load");
      });
    }
    $("answer-A").addEventListener("click", () => answer("A"));
    $("answer-B").addEventListener("click", () => answer("B"));
    document.addEventListener("keydown", (ev) => {
      if ($("trial").hidden) return;
      if (ev.key === "1") answer("A");
      if (ev.key === "2") answer("B");
    });
    refresh();
  });
})();
"""


def admin_html(
    table: list[dict],
    n_raters: int,
    n_answers: int,
    n_without_audio: int = 0,
    invites: list[dict] | None = None,
    csrf: str = "",
    registration: str = "invite",
    new_codes: list[str] | None = None,
    base_url: str = "/",
) -> str:
    """The admin page: HER per cell, the figure and the invitation codes.

    Parameters
    ----------
    table : list of dict
        Rows of :func:`results.her_table` (with EER columns).
    n_raters, n_answers, n_without_audio : int
        Counts for the summary line (answers given without all audio fetched).
    invites : list of dict
        Rows of :meth:`Store.list_invites`.
    csrf : str
        Value of the invitation form's CSRF field.
    registration : str
        ``"invite"`` or ``"open"``.
    new_codes : list of str, optional
        Codes just created: shown in full, this once.
    base_url : str
        The app's URL, for invitation links.

    Example
    -------
    >>> "HER" in admin_html([], 0, 0)
    True
    >>> "ABCD-EFGH" in admin_html([], 0, 0, new_codes=["ABCD-EFGH-JKMN-PQRS"])
    True
    """
    esc = html.escape

    def pct(value):
        return "" if value in (None, "") else f"{100 * value:.1f}"

    def rows(cells):
        return "\n".join(
            "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
            for row in cells
        )

    her_rows = rows(
        (r["model"], r["condition"], r["layer"], r["n"], r["raters"], pct(r["her"]))
        + (f"{pct(r['ci_low'])} to {pct(r['ci_high'])}", pct(r.get("eer")))
        + (r.get("without_audio", ""),)
        for r in table
    )
    figure = (
        '<img class="figure" src="/admin/her.png" alt="HER and EER per layer">'
        if table
        else "<p>No answers yet.</p>"
    )
    new = ""
    if new_codes:
        items = "\n".join(
            f'<li><span class="codes">{esc(c)}</span> '
            f'<a href="{esc(base_url)}#invite={esc(c)}">{esc(base_url)}#invite={esc(c)}</a></li>'
            for c in new_codes
        )
        new = (
            f"<h3>{len(new_codes)} new codes</h3><p>Copy them now: the server keeps "
            f'only their hash and shows them this once.</p><ul id="new-codes">{items}</ul>'
        )
    invite_rows = rows(
        (f"{r['hint']}-…", r["label"], f"{r['used']} / {r['uses']}", r["raters"])
        for r in invites or []
    )
    mode = (
        "Registration is <b>open</b> (serve --open): anyone who can reach this "
        "server can register; codes are not needed."
        if registration == "open"
        else "Raters register with an invitation code (or link)."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Listening test: results</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><main>
<h1>Human error rate (HER) per layer</h1>
<p>{n_raters} raters, {n_answers} answers
({n_without_audio} of them without all their audio fetched).
HER and EER in percent; interval: Wilson 95%.
<a href="/admin/her.csv">her.csv</a> <a href="/admin/answers.csv">answers.csv</a></p>
<table><thead><tr><th>model</th><th>condition</th><th>layer</th><th>n</th><th>raters</th>
<th>HER</th><th>95% CI</th><th>EER</th><th>without audio</th></tr></thead>
<tbody>
{her_rows}
</tbody></table>
{figure}
<h2 id="invites">Invitation codes</h2>
<p>{mode}</p>
{new}
<form class="invites" method="post" action="/admin/invites">
<input type="hidden" name="csrf" value="{esc(csrf)}">
<label>codes <input name="count" type="number" min="1" max="500" value="5" required></label>
<label>uses each <input name="uses" type="number" min="1" max="1000" value="1" required></label>
<label>label <input name="label" maxlength="64" placeholder="e.g. session 1"></label>
<button type="submit" id="create-invites">Create</button>
</form>
<table><thead><tr><th>code</th><th>label</th><th>used</th><th>raters</th></tr></thead>
<tbody>
{invite_rows}
</tbody></table>
</main></body></html>
"""
