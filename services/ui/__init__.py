"""The read-only web UI over the run ledger and the published data (`pipeline ui`, `pipeline report`)."""
