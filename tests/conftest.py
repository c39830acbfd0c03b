"""Shared test setup: offline everything, W&B never reaches a server; a per-file time table at the end."""

import os
from collections import defaultdict

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

FILE_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report):
    """Sum setup + call + teardown per test file (also for reports coming back from xdist workers)."""
    FILE_SECONDS[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter):
    if not FILE_SECONDS:
        return
    terminalreporter.section("wall time per test file (summed over tests)")
    for path, seconds in sorted(FILE_SECONDS.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(FILE_SECONDS.values()):8.1f} s  total")
