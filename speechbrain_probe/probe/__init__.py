"""speechbrain_probe.probe."""
