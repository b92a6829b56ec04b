"""Triplet (ABX) listening test: the human error rate (HER) per layer.

Modules: ``registry`` (the stimuli), ``design`` (balanced ABX trials),
``store`` (SQLite answers), ``app`` (Flask), ``results`` (HER with Wilson
intervals, CSV and figure beside the EER), ``cli`` (``python -m
speechbrain_probe.listening serve|results|demo``), ``server`` (waitress),
``pages`` (HTML, CSS and script), ``demo`` (generated stimuli).
"""

from .design import Trial, TripletDesign
from .registry import Registry, Stimulus, load_registry
from .results import her_table, wilson_interval
from .store import Store

__all__ = [
    "Registry",
    "Stimulus",
    "Store",
    "Trial",
    "TripletDesign",
    "her_table",
    "load_registry",
    "wilson_interval",
]
