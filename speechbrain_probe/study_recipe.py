"""The study stage of the recipes, from their hparams: the models it scores,
its verifiers, the study (debug-sized under ``--debug``) and its report.

``recipes/<Dataset>/Probe/Highway/evaluate.py`` run it on the models of their
hparams; ``recipes/AnyCorpus/Probe/Highway/probe_model.py`` on the models it
has just probed.
"""

from __future__ import annotations

import logging

from speechbrain.utils.distributed import if_main_process, run_on_main

from speechbrain_probe.devices import run_device
from speechbrain_probe.evaluation.study import ModelSpec, run_study
from speechbrain_probe.report import build_report

__all__ = ["chosen_models", "chosen_verifiers", "study_and_report"]

logger = logging.getLogger(__name__)


def chosen_models(hparams) -> list[ModelSpec]:
    """The ``models`` of the hparams that ``use_models`` lists (all when null).

    Example
    -------
    >>> models = {"a": {"asr": "x/export", "probes": "x/save"}, "b": {"asr": "y", "probes": "z"}}
    >>> [m.name for m in chosen_models({"models": models, "use_models": ["b"]})]
    ['b']
    >>> chosen_models({"models": models, "use_models": ["c"]})
    Traceback (most recent call last):
    ...
    ValueError: unknown model(s) ['c']; available: a, b
    """
    models = hparams["models"] or {}
    if not models:
        raise ValueError("the hparams list no models: add a `models:` mapping")
    chosen = hparams["use_models"] or list(models)
    unknown = [m for m in chosen if m not in models]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; available: {', '.join(models)}")
    return [ModelSpec.from_dict(name, models[name]) for name in chosen]


def chosen_verifiers(hparams) -> dict:
    """GE2E (resemblyzer's shipped model), and ECAPA when ``ecapa_source`` is set.

    Example
    -------
    >>> chosen_verifiers({"ecapa_source": "ecapa/model"})
    {'ge2e': None, 'ecapa': 'ecapa/model'}
    """
    verifiers = {"ge2e": None}
    if hparams["ecapa_source"]:
        verifiers["ecapa"] = str(hparams["ecapa_source"])
    return verifiers


def study_and_report(hparams, run_opts, models, data_folder, verifiers, **extra):
    """Score ``models`` on the prepared corpus in ``data_folder`` with the
    hparams' study settings, then write the report (on the main process).

    Arguments
    ---------
    hparams : dict
        ``output_folder``, ``conditions``, ``seed``,
        ``negatives_per_positive``, ``utts_per_speaker``,
        ``pesq_per_speaker``, ``n_boot``, ``griffin_lim_iters``, ``n_jobs``,
        ``batch_size``, ``num_threads``, and the report's ``title`` and
        ``note``.
    run_opts : dict
        SpeechBrain's run options: ``device``; ``debug`` scores two
        utterances per speaker (PESQ on one) with a short bootstrap, a
        check that everything runs, not a result.
    models : list of ModelSpec
        The models to score.
    data_folder : path
        The prepared corpus (``test.csv`` and ``test_snr*.csv``).
    verifiers : dict
        Speaker verifiers of the EERs (see :func:`chosen_verifiers`).
    **extra
        Other arguments of :func:`~speechbrain_probe.evaluation.study.run_study`.

    Returns
    -------
    Path or None
        The report page (None on the other processes).
    """
    settings = dict(
        data_folder=data_folder,
        output_folder=hparams["output_folder"],
        models=models,
        conditions=hparams["conditions"],
        utts_per_speaker=hparams["utts_per_speaker"],
        verifiers=verifiers,
        griffin_lim_iters=hparams["griffin_lim_iters"],
        n_boot=hparams["n_boot"],
        n_jobs=hparams["n_jobs"],
        batch_size=hparams["batch_size"],
        device=run_device(run_opts),
        seed=hparams["seed"],
        num_threads=hparams["num_threads"],
        pesq_per_speaker=hparams["pesq_per_speaker"],
        negatives_per_positive=hparams["negatives_per_positive"],
        **extra,
    )
    if run_opts.get("debug"):
        # two per speaker: the fewest that make a same-speaker trial
        n_boot = min(settings["n_boot"], 50)
        settings.update(utts_per_speaker=2, pesq_per_speaker=1, n_boot=n_boot)
        logger.info("debug: 2 utterances per speaker, %d bootstrap samples", n_boot)
    run_on_main(run_study, kwargs=settings)
    if not if_main_process():
        return None
    page = build_report(
        hparams["output_folder"],
        title=hparams["title"],
        note=hparams["note"] or "",
        verbose=False,
    )
    print(f"report: {page}")
    return page
