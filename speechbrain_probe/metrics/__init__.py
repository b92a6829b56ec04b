"""What survived: speaker verification, EER/minDCF, STOI/PESQ.

* :mod:`~speechbrain_probe.metrics.trials`: seeded, balanced trial lists (CSV).
* :mod:`~speechbrain_probe.metrics.eer`: sorted EER/minDCF (SpeechBrain's values)
  of trial lists with integer weights.
* :mod:`~speechbrain_probe.metrics.bootstrap`: the speaker bootstrap of every
  95% interval (a cell's EER, minDCF, mean STOI/PESQ; paired differences).
* :mod:`~speechbrain_probe.metrics.speaker`: GE2E (resemblyzer) and ECAPA
  (SpeechBrain) verifiers, cosine scoring of trials.
* :mod:`~speechbrain_probe.metrics.ecapa`: build/export an ECAPA-TDNN in
  pretrained format.
* :mod:`~speechbrain_probe.metrics.quality`: parallel STOI / wide-band PESQ
  with a per-utterance exclusion record.

Submodules are imported on demand (``from speechbrain_probe.metrics.eer import eer``)
so that importing the package stays light.
"""
