"""speechbrain_probe.asr."""
