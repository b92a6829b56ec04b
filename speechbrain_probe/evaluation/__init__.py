"""The evaluation: reconstructions of every probed layer, their scores, the report."""

from speechbrain_probe.evaluation.study import ModelSpec, run_study

__all__ = ["ModelSpec", "run_study"]
