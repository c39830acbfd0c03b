"""The launcher's machinery: config schema and validation, safe instantiation, Trainer and logger
construction, the results contract, and sweep aggregation. ``launch.py`` reads top to bottom on it."""
