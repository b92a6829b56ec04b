"""A self-contained HTML listening page, like the paper's demo page.

The page opens from disk (``file://``), needs no server and loads nothing from
the network: its style and script are inline, audio and figures are referenced
by paths relative to the page. Choose an utterance and an input condition;
hear the clean input, the noise, the mixture, copy synthesis, and the
reconstruction from every probed layer of every ASR model; the tables and
figures sit beside.

All text from the result files is escaped: HTML text through
:func:`html.escape`, the embedded data as JSON with ``<``, ``>`` and ``&``
written as unicode escapes, and the script sets only ``textContent`` and
``src``.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from urllib.parse import quote

from speechbrain_probe.atomic import atomic_write_text
from speechbrain_probe.report.table import METRIC_SPECS
from speechbrain_probe.result_rows import MetricRow, Sample
from speechbrain_probe.study_info import StudyInfo, StudyModel
from speechbrain_probe.vocabulary import (
    ARCH_LAYERS,
    ARCH_NAMES,
    REFERENCE_LAYERS,
    TRAININGS,
    ModelId,
    condition_label,
    condition_sort_key,
    display_scale,
    layer_sort_key,
)

__all__ = [
    "page_data",
    "cell_scores",
    "render_page",
    "write_listening_page",
    "relative_url",
]

_INPUT_KINDS = ("original", "noise", "mixture", "copy_synthesis")


def relative_url(target: str | os.PathLike, page_dir: str | os.PathLike) -> str:
    """URL of ``target`` relative to the folder of the page, percent-encoded.

    Example
    -------
    >>> relative_url("/r/audio/a b#1.wav", "/r")
    'audio/a%20b%231.wav'
    >>> relative_url("/data/x.wav", "/r/report")
    '../../data/x.wav'
    """
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(page_dir))
    return "/".join(quote(part) for part in Path(rel).parts)


def page_data(
    sample_rows: list[Sample],
    page_dir: str | os.PathLike,
    model_info=None,
    conditions=None,
    groups=None,
) -> tuple[dict, list[str]]:
    """Organise ``samples.csv`` rows for the page; drop rows whose file is missing.

    Arguments
    ---------
    sample_rows : list of Sample
        Rows of ``samples.csv`` with the absolute ``file`` added by
        :func:`~speechbrain_probe.result_rows.read_samples`.
    page_dir : path
        Folder of the HTML page (audio URLs are relative to it).
    model_info : StudyInfo or dict, optional
        What the study ran (a :class:`StudyInfo`, or model -> StudyModel).
        A model of the paper (architecture and training) is shown in its
        architecture's table with the other training; any other model in its
        own table, under its label and source, with its layers in the model's
        order. A model not described is guessed from an id
        ``<arch>_<training>``.
    conditions : sequence of str, optional
        The study's condition order (default: clean, then falling SNR).
    groups : dict, optional
        model -> ``{"group": id, "group_label": caption, "row_header": ...,
        "row_label": ...}``: puts models in one table of their own, a row
        each, tables and rows in this mapping's order (e.g. one model heard
        through two vocoders, :mod:`~speechbrain_probe.report.comparison`).

    Returns
    -------
    data : dict
        ``utterances``, ``conditions``, ``models`` and ``audio``
        (utt -> condition -> kind -> URL, reconstructions under ``layers``
        as model -> layer -> URL).
    missing : list of str
        The listed files that do not exist (left off the page).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> _ = (tmp / "a.wav").write_bytes(b"RIFF")
    >>> rows = [Sample("u", "s", "", "", "clean", "original", "a.wav", tmp / "a.wav"),
    ...         Sample("u", "s", "vgg_lstm_robust", "cnn1", "clean", "reconstruction",
    ...                "b.wav", tmp / "b.wav")]
    >>> data, missing = page_data(rows, tmp)
    >>> data["audio"]["u"]["clean"]["original"], [Path(m).name for m in missing]
    ('a.wav', ['b.wav'])
    """
    audio, missing, speakers, models = _audio(sample_rows, page_dir)
    found = [c for by_condition in audio.values() for c in by_condition]
    preferred = [c for c in (conditions or ()) if c in found]
    condition_order = preferred + sorted(
        set(found) - set(preferred), key=condition_sort_key
    )
    if isinstance(model_info, StudyInfo):
        model_info = {m.name: m for m in model_info.models}
    model_list = _model_entries(models, dict(model_info or {}), groups)
    utterances = [dict(id=u, spk=speakers[u]) for u in sorted(audio)]
    data = dict(
        utterances=utterances,
        conditions=[dict(id=c, label=condition_label(c)) for c in condition_order],
        models=model_list,
        audio=audio,
    )
    return data, missing


def _audio(sample_rows, page_dir) -> tuple[dict, list, dict, dict]:
    """``audio`` (see :func:`page_data`), the missing files, utt -> speaker
    and model -> {layer: None} (layers in first-seen order)."""
    audio, missing, speakers, models = {}, [], {}, {}
    for row in sample_rows:
        file = Path(row.file)
        if not file.is_file():
            missing.append(str(file))
            continue
        speakers.setdefault(row.utt_id, row.spk_id)
        url = relative_url(file, page_dir)
        slot = audio.setdefault(row.utt_id, {}).setdefault(row.condition or "clean", {})
        if row.kind == "reconstruction":
            slot.setdefault("layers", {}).setdefault(row.model, {})[row.layer] = url
            models.setdefault(row.model, {})[row.layer] = None
        else:
            slot[row.kind] = url
    # The clean input is the same for every condition: fill it in where absent.
    for by_condition in audio.values():
        clean = next(
            (
                by_condition[c]["original"]
                for c in sorted(by_condition, key=condition_sort_key)
                if "original" in by_condition[c]
            ),
            None,
        )
        for slot in by_condition.values():
            if clean is not None:
                slot.setdefault("original", clean)
    return audio, missing, speakers, models


def _describe(model: str, described: dict) -> StudyModel:
    """A model as the study describes it, else guessed from its id."""
    if model in described:
        return described[model]
    try:
        found = ModelId.parse(model)
    except ValueError:
        return StudyModel(model, ())
    return StudyModel(model, (), found.arch, found.training)


def _layer_order(info: StudyModel, found: dict) -> list[str]:
    """A model's layers with audio: the paper's order, the study's, or
    sorted (:func:`layer_sort_key`)."""
    layers = set(found)
    if info.arch in ARCH_LAYERS and info.training in TRAININGS:
        order = ARCH_LAYERS[info.arch]
        return [x for x in order if x in layers] + sorted(
            layers - set(order), key=layer_sort_key
        )
    if info.layers:
        own = [x for x in info.layers if x in layers]
        return own + [x for x in found if x not in own]
    return sorted(layers, key=layer_sort_key)


def _model_entries(models: dict, described: dict, groups) -> list[dict]:
    """The page's models, in the order of their tables and rows."""
    study_rank = {name: i for i, name in enumerate(described)}
    arch_rank = {a: i for i, a in enumerate(ARCH_LAYERS)}
    train_rank = {t: i for i, t in enumerate(("baseline", "robust"))}
    groups = dict(groups or {})
    group_rank = {}
    for g in groups.values():
        group_rank.setdefault(g["group"], len(group_rank))
    row_rank = {model: i for i, model in enumerate(groups)}
    model_list = []
    for model, found in models.items():
        info = _describe(model, described)
        arch_label = ARCH_NAMES.get(info.arch, info.arch or info.label)
        entry = dict(
            id=model,
            arch=info.arch or model,
            arch_label=arch_label,
            training=info.training or model,
            layers=_layer_order(info, found),
            label=info.label,
            source=info.source,
        )
        if info.arch in ARCH_LAYERS and info.training in TRAININGS:
            entry.update(
                group=info.arch,
                group_label=arch_label,
                row_header="ASR training",
                row_label=info.training,
                rank=(arch_rank[info.arch], 0, train_rank.get(info.training, 9), model),
            )
        else:
            caption = info.label + (f" ({info.source})" if info.source else "")
            entry.update(
                group=model,
                group_label=caption,
                row_header="model",
                row_label=model,
                rank=(len(arch_rank), study_rank.get(model, len(study_rank)), 0, model),
            )
        if model in groups:
            g = groups[model]
            entry.update(
                group=g["group"],
                group_label=g.get("group_label", g["group"]),
                row_header=g.get("row_header", "model"),
                row_label=g.get("row_label", model),
                clip_label=f"{g.get('group_label', g['group'])} {g.get('row_label', model)}",
                rank=(
                    len(arch_rank) + 1,
                    group_rank[g["group"]],
                    row_rank[model],
                    model,
                ),
            )
        model_list.append(entry)
    model_list.sort(key=lambda m: m["rank"])
    for entry in model_list:
        del entry["rank"]
    return model_list


_SHORT_NAMES = {
    "eer_ge2e": "EER GE2E",
    "eer_ecapa": "EER ECAPA",
    "stoi": "STOI",
    "pesq": "PESQ",
}


def cell_scores(metric_rows: list[MetricRow]) -> dict:
    """Short score lines to show under each clip, from ``metrics.csv`` rows.

    Returns ``{"layers": {model: {condition: {layer: text}}},
    "references": {condition: {original|copy_synthesis: text}}}``.

    Example
    -------
    >>> rows = [MetricRow("m", "blstm", "robust", "blstm1", "snr0", m, v, n=3)
    ...         for m, v in (("eer_ge2e", 0.3287), ("stoi", 0.714))]
    >>> cell_scores(rows)["layers"]["m"]["snr0"]["blstm1"]
    'EER GE2E 32.9%\\nSTOI 0.71'
    """
    by_metric = {}
    for row in metric_rows:
        if row.metric in _SHORT_NAMES:
            by_metric.setdefault(row.metric, []).append(row)
    parts_layers, parts_refs = {}, {}
    arch_rank = {a: i for i, a in enumerate(ARCH_LAYERS)}
    for metric in _SHORT_NAMES:
        rows = by_metric.get(metric, [])
        spec = METRIC_SPECS[metric]
        scale = display_scale(metric)
        unit = "%" if spec.percent else ""
        digits = 1 if spec.percent else 2
        rows = sorted(rows, key=lambda r: (arch_rank.get(r.arch, 99), r.model))
        for row in rows:
            if row.value is None:
                continue
            text = f"{_SHORT_NAMES[metric]} {row.value * scale:.{digits}f}{unit}"
            if row.layer in REFERENCE_LAYERS:
                slot = parts_refs.setdefault(row.condition, {})
                slot.setdefault(row.layer, {}).setdefault(metric, text)
            else:
                slot = parts_layers.setdefault(row.model, {})
                slot = slot.setdefault(row.condition, {}).setdefault(row.layer, {})
                slot[metric] = text
    return {
        "layers": {
            model: {
                cond: {layer: "\n".join(t.values()) for layer, t in by_layer.items()}
                for cond, by_layer in by_cond.items()
            }
            for model, by_cond in parts_layers.items()
        },
        "references": {
            cond: {layer: "\n".join(t.values()) for layer, t in by_layer.items()}
            for cond, by_layer in parts_refs.items()
        },
    }


def _json_for_script(data) -> str:
    """JSON safe inside ``<script type="application/json">``.

    Example
    -------
    >>> _json_for_script({"x": "</script><b>&"})
    '{"x": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e\\\\u0026"}'
    """
    text = json.dumps(data, ensure_ascii=True)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, code)
    return text


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.2em; }
.layout { display: grid; grid-template-columns: minmax(0, 1fr); gap: 1.5em; }
@media (min-width: 1400px) {
  .layout { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); } }
.controls label { margin-right: 1em; }
.inputs { display: flex; flex-wrap: wrap; gap: 0.8em; }
.clip { border: 1px solid #ccc; border-radius: 4px; padding: 0.3em 0.5em; }
.clip .name { font-size: 0.85em; color: #444; display: block; }
audio { width: 170px; height: 32px; }
#layers audio { width: 140px; }
table.results td, table.results th { white-space: nowrap; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.8em; margin-bottom: 0.3em;
        display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.4em; text-align: center; }
td.missing, .missing { color: #999; }
td.marked { font-weight: bold; background: #eef4fb; }
caption { font-weight: bold; text-align: left; padding: 0.3em 0; }
p.note { font-size: 0.8em; color: #555; margin: 0.2em 0; }
figure { margin: 0 0 1em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #444; }
.warning { color: #8a4b00; font-size: 0.85em; }
.score { font-size: 0.72em; color: #555; white-space: pre-line; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var uttSel = document.getElementById("utterance");
  var condSel = document.getElementById("condition");
  var KIND_NAMES = {original: "clean input", noise: "noise", mixture: "mixture (ASR input)",
                    copy_synthesis: "copy synthesis (vocoder only)"};

  function option(value, text) {
    var o = document.createElement("option");
    o.value = value; o.textContent = text; return o;
  }
  DATA.utterances.forEach(function (u) {
    uttSel.appendChild(option(u.id, u.spk ? u.id + " (speaker " + u.spk + ")" : u.id));
  });
  DATA.conditions.forEach(function (c) { condSel.appendChild(option(c.id, c.label)); });

  var SCORES = DATA.scores || {layers: {}, references: {}};
  function score(text) {
    var d = document.createElement("div");
    d.className = "score"; d.textContent = text || "";
    return d;
  }
  function clip(url, name, showName) {
    var box = document.createElement("div");
    box.className = showName ? "clip" : "cell";
    if (showName) {
      var label = document.createElement("span");
      label.className = "name"; label.textContent = name;
      box.appendChild(label);
    }
    if (url) {
      var a = document.createElement("audio");
      a.controls = true; a.preload = "metadata";
      a.setAttribute("src", url);
      a.title = name;
      a.setAttribute("aria-label", name);
      box.appendChild(a);
    } else {
      var m = document.createElement("span");
      m.className = "missing"; m.textContent = "-";
      box.appendChild(m);
    }
    return box;
  }

  function render() {
    var slot = ((DATA.audio[uttSel.value] || {})[condSel.value]) || {};
    var inputs = document.getElementById("inputs");
    inputs.textContent = "";
    var refScores = SCORES.references[condSel.value] || {};
    ["original", "noise", "mixture", "copy_synthesis"].forEach(function (kind) {
      var box = clip(slot[kind], KIND_NAMES[kind], true);
      // metrics.csv's "original" row of a noisy condition may describe the
      // mixture rather than the clean input: show it only for clean input.
      var shown = kind !== "original" || condSel.value === "clean";
      if (refScores[kind] && shown) box.appendChild(score(refScores[kind]));
      inputs.appendChild(box);
    });
    var layersBox = document.getElementById("layers");
    layersBox.textContent = "";
    var byArch = {};
    var archOrder = [];
    DATA.models.forEach(function (m) {
      var group = m.group || m.arch;
      if (!byArch[group]) { byArch[group] = []; archOrder.push(group); }
      byArch[group].push(m);
    });
    archOrder.forEach(function (arch) {
      var models = byArch[arch];
      var layers = [];
      models.forEach(function (m) {
        m.layers.forEach(function (l) { if (layers.indexOf(l) < 0) layers.push(l); });
      });
      var table = document.createElement("table");
      var cap = document.createElement("caption");
      cap.textContent = models[0].group_label || models[0].arch_label;
      table.appendChild(cap);
      var head = document.createElement("tr");
      var corner = document.createElement("th");
      corner.textContent = models[0].row_header || "ASR training";
      head.appendChild(corner);
      layers.forEach(function (l) {
        var th = document.createElement("th"); th.textContent = l; head.appendChild(th);
      });
      table.appendChild(head);
      models.forEach(function (m) {
        var tr = document.createElement("tr");
        var th = document.createElement("th");
        th.textContent = m.row_label || m.training;
        th.title = m.source ? m.id + " (" + m.source + ")" : m.id;
        tr.appendChild(th);
        var recs = (slot.layers || {})[m.id] || {};
        layers.forEach(function (l) {
          var td = document.createElement("td");
          var name = m.clip_label ||
            (m.row_header === "model" ? m.label : m.arch_label + " " + m.training);
          td.appendChild(clip(recs[l], name + " " + l, false));
          var sc = ((SCORES.layers[m.id] || {})[condSel.value] || {})[l];
          if (sc) td.appendChild(score(sc));
          tr.appendChild(td);
        });
        table.appendChild(tr);
      });
      var wrap = document.createElement("div");
      wrap.className = "scroll";
      wrap.appendChild(table);
      layersBox.appendChild(wrap);
    });
    var params = new URLSearchParams();
    params.set("utt", uttSel.value); params.set("cond", condSel.value);
    history.replaceState(null, "", "#" + params.toString());
  }

  var start = new URLSearchParams(location.hash.slice(1));
  function pick(sel, value) {
    for (var i = 0; i < sel.options.length; i++) {
      if (sel.options[i].value === value) { sel.selectedIndex = i; return; }
    }
  }
  if (start.get("utt")) pick(uttSel, start.get("utt"));
  if (start.get("cond")) pick(condSel, start.get("cond"));
  uttSel.addEventListener("change", render);
  condSel.addEventListener("change", render);
  render();
})();
"""


def render_page(
    data: dict,
    tables_html=(),
    figures=(),
    title: str = "What does each layer hear?",
    notes=(),
    sections=(),
) -> str:
    """The page's HTML text.

    Arguments
    ---------
    data : dict
        From :func:`page_data`.
    tables_html : sequence of str
        Already-escaped HTML fragments (``Table.to_html()``).
    figures : sequence of (str, str)
        ``(caption, relative URL)`` of each PNG.
    title : str
        Page title (escaped here).
    notes : sequence of str
        Sentences shown under the title (escaped here).
    sections : sequence of (str, sequence of str)
        More result sections after the tables: a heading (escaped here) and
        already-escaped HTML fragments (tables, notes).

    Example
    -------
    >>> page = render_page({"utterances": [], "conditions": [], "models": [],
    ...                     "audio": {}}, title="A <b> & C",
    ...                    sections=[("Claims & more", ["<p>x</p>"])])
    >>> "<title>A &lt;b&gt; &amp; C</title>" in page, "<h2>Claims &amp; more</h2>" in page
    (True, True)
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    parts.extend(f'<p class="note">{escape(note)}</p>' for note in notes)
    parts.append('<div class="layout"><section id="listen">')
    parts.append("<h2>Listen</h2>")
    parts.append("<noscript><p>The listening controls need JavaScript.</p></noscript>")
    if not data["utterances"]:
        parts.append(
            '<p class="missing">No audio: there is no samples.csv, or none of the '
            "files it lists exists.</p>"
        )
    parts.append(
        '<div class="controls"><label>Utterance <select id="utterance"></select></label>'
        '<label>Input condition <select id="condition"></select></label></div>'
    )
    parts.append('<h2>Input and references</h2><div class="inputs" id="inputs"></div>')
    parts.append(
        "<h2>Reconstruction from each layer</h2>"
        '<p class="note">Probe output of each layer, turned into sound by the same '
        "vocoder as copy synthesis.</p>"
        '<div id="layers"></div>'
    )
    parts.append('</section><section id="results"><h2>Tables</h2>')
    if not tables_html:
        parts.append('<p class="missing">No tables (no result files found).</p>')
    for fragment in tables_html:
        parts.append(f'<div class="scroll">{fragment}</div>')
    for heading, fragments in sections:
        parts.append(f"<h2>{escape(heading)}</h2>")
        parts.extend(f'<div class="scroll">{fragment}</div>' for fragment in fragments)
    parts.append("<h2>Figures</h2>")
    if not figures:
        parts.append('<p class="missing">No figures.</p>')
    for caption, url in figures:
        parts.append(
            f'<figure><img src="{escape(url, quote=True)}" alt="{escape(caption, quote=True)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    parts.append("</section></div>")
    parts.append(
        f'<script type="application/json" id="report-data">{_json_for_script(data)}</script>'
    )
    parts.append(f"<script>{_SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_listening_page(
    path: str | os.PathLike,
    sample_rows: list[Sample],
    tables_html=(),
    figures=(),
    model_info=None,
    title: str = "What does each layer hear?",
    notes=(),
    metric_rows=(),
    conditions=None,
    sections=(),
    groups=None,
) -> tuple[Path, list[str]]:
    """Write the listening page to ``path`` (atomically).

    Arguments
    ---------
    path : path
        The HTML file to write.
    sample_rows : list of Sample
        Rows of ``samples.csv`` (see :func:`~speechbrain_probe.result_rows.read_samples`).
    tables_html : sequence of str
        HTML fragments of the tables.
    figures : sequence of (str, path)
        ``(caption, PNG path)``; PNGs that do not exist are left out. A
        relative path is taken from the current folder (as Python opens it),
        else from the page's folder; the page links it relative to itself,
        so the folder can be moved.
    model_info : StudyInfo or dict, optional
        What the study ran (see :func:`page_data`).
    title : str
        Page title.
    notes : sequence of str
        Sentences under the title.
    metric_rows : list of MetricRow
        Rows of ``metrics.csv``: each clip shows its layer's scores.
    conditions : sequence of str, optional
        The study's condition order.
    sections : sequence of (str, sequence of str)
        More result sections (see :func:`render_page`).
    groups : dict, optional
        Tables of models chosen by the caller (see :func:`page_data`).

    Returns
    -------
    path : Path
        The page.
    missing : list of str
        Audio and figure files listed but absent (left off the page, and
        named on it).

    Example
    -------
    >>> tmp = getfixture("tmp_path")
    >>> page, missing = write_listening_page(tmp / "report.html", [])
    >>> page.read_text().startswith("<!DOCTYPE html>"), missing
    (True, [])
    """
    path = Path(path)
    page_dir = path.resolve().parent
    data, missing = page_data(sample_rows, page_dir, model_info, conditions, groups)
    data["scores"] = cell_scores(list(metric_rows))
    figure_links = []
    for caption, file in figures:
        file = Path(file)
        if not file.is_absolute():
            from_here = file.resolve()
            file = from_here if from_here.is_file() else page_dir / file
        if file.is_file():
            figure_links.append((caption, relative_url(file, page_dir)))
        else:
            missing.append(str(file))
    notes = list(notes)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        notes.append(
            f"{len(missing)} listed file(s) do not exist and are left out: {shown}"
        )
    html_text = render_page(data, tables_html, figure_links, title, notes, sections)
    return atomic_write_text(path, html_text), missing
