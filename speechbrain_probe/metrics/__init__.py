"""speechbrain_probe.metrics."""
