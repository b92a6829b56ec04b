"""What survived: speaker verification, EER/minDCF, STOI/PESQ.

* :mod:`~speechbrain_probe.metrics.trials`: seeded, balanced trial lists (CSV).
* :mod:`~speechbrain_probe.metrics.eer`: sorted EER/minDCF (SpeechBrain's values)
  with bootstrap intervals.
* :mod:`~speechbrain_probe.metrics.speaker`: GE2E (resemblyzer) and ECAPA
  (SpeechBrain) verifiers, cosine scoring of trials.
* :mod:`~speechbrain_probe.metrics.ecapa`: build/export an ECAPA-TDNN in
  pretrained format.
* :mod:`~speechbrain_probe.metrics.quality`: parallel STOI / wide-band PESQ
  with a per-utterance exclusion record.

Submodules are imported on demand (``from speechbrain_probe.metrics.eer import eer``)
so that importing the package stays light.
"""
