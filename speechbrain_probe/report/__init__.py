"""speechbrain_probe.report."""
