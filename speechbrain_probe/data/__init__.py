"""speechbrain_probe.data."""
