"""Offline source datasets: generated locally by rolling out a behaviour policy, saved as ``.npz``
with a JSON manifest (environment, physics, policy, seed), and read back only if the manifest
matches the environment asked for. A user-supplied file in D4RL ``qlearning_dataset`` layout
(``observations, actions, next_observations, rewards, terminals``) is read the same way.
"""

import json
import os
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np

KEYS = ("observations", "actions", "next_observations", "rewards", "terminals")


def rollouts(
    env: gym.Env,
    policy: Callable[[np.ndarray, np.random.Generator], np.ndarray],
    n: int,
    rng: np.random.Generator,
    state: Callable[[gym.Env], np.ndarray] | None = None,
) -> dict:
    """``n`` transitions of ``policy(obs [1, ds], rng) -> action [1, da]`` in ``env``, episodes reset
    from seeds drawn from ``rng``; ``state(env)`` (optional) records the simulator state before each step."""
    rows = {k: [] for k in KEYS} | ({"states": []} if state else {})
    obs, _ = env.reset(seed=int(rng.integers(2**31)))
    for _ in range(n):
        if state:
            rows["states"].append(state(env))
        action = policy(obs[None], rng)[0].astype(np.float32)
        nxt, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(KEYS, (obs, action, nxt, reward, terminated)):
            rows[key].append(value)
        obs = env.reset(seed=int(rng.integers(2**31)))[0] if terminated or truncated else nxt
    return {k: np.asarray(v, dtype=np.float64 if k == "states" else np.float32) for k, v in rows.items()}


def save(path: Path, data: dict, manifest: dict) -> None:
    """Write manifest then arrays, each through a temporary file (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path.with_suffix(".json"))
    with open(tmp, "wb") as f:
        np.savez_compressed(f, **data)
    os.replace(tmp, path)


def load(path: Path, expected: dict) -> dict:
    """The arrays of ``path``; ``ValueError`` if its manifest disagrees with ``expected`` on any key
    both name, or if a D4RL key is missing or the arrays' lengths differ."""
    manifest_path = Path(path).with_suffix(".json")
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        wrong = {k: (manifest[k], v) for k, v in expected.items() if k in manifest and manifest[k] != v}
        if wrong:
            detail = "; ".join(f"{k}: file has {a!r}, environment needs {b!r}" for k, (a, b) in wrong.items())
            raise ValueError(f"dataset manifest {manifest_path} does not match the environment: {detail}")
    with np.load(path) as f:
        data = {k: f[k] for k in f.files}
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise ValueError(f"dataset {path} lacks the D4RL keys {missing}")
    lengths = {k: len(data[k]) for k in KEYS}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"dataset {path} arrays differ in length: {lengths}")
    return data


def cached(path: Path, manifest: dict, generate: Callable[[], dict]) -> dict:
    """Load the dataset at ``path`` if present (manifest checked), else generate and save it.
    Generation is deterministic in the manifest, so the file is a cache, never a source of truth."""
    if not Path(path).exists():
        save(Path(path), generate(), manifest)
    return load(Path(path), manifest)
