"""speechbrain_probe.listening."""
