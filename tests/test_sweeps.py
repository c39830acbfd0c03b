"""W&B sweep specs (sweeps/*.yaml): valid against W&B's own schema, and every point composes."""

from __future__ import annotations

import itertools

import pytest
import yaml

from modules.runtime.config import validate
from tests.helpers import ROOT, compose_config

SPECS = sorted((ROOT / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_sweep_spec_is_valid_and_every_point_composes(path):
    schema = pytest.importorskip("sweeps.config.cfg", reason="`make install` installs W&B's sweeps schema")
    spec = yaml.safe_load(path.read_text())
    assert schema.schema_violations_from_proposed_config(spec) == []
    assert spec["program"] == "launch.py" and "${args_no_hyphens}" in spec["command"]
    fixed = [a for a in spec["command"] if not a.startswith("${")]
    names = list(spec["parameters"])
    for values in itertools.product(*(spec["parameters"][n]["values"] for n in names)):
        validate(compose_config([*fixed, *(f"{n}={v}" for n, v in zip(names, values))]))
