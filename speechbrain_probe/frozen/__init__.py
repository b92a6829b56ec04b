"""A frozen ASR behind one interface: named layers read as frame sequences.

:mod:`~speechbrain_probe.frozen.interface` (the interface, any
``torch.nn.Module``), :mod:`~speechbrain_probe.frozen.sb_inference`
(SpeechBrain inference models), :mod:`~speechbrain_probe.frozen.hf_encoder`
(Hugging Face speech encoders), :mod:`~speechbrain_probe.frozen.source` (local
directory or hub id: the one rule), :mod:`~speechbrain_probe.frozen.load`
(:func:`~speechbrain_probe.frozen.load.load_asr` picks a wrapper) and
:mod:`~speechbrain_probe.frozen.list_layers` (the command line).
"""
