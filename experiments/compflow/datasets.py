"""Offline source datasets: generated locally by rolling out a behaviour policy, saved as ``.npz``
with a JSON manifest (environment, physics, policy, seed), and read back only if the manifest
matches the environment asked for. A user-supplied file is read the same way, in one of three
layouts (none can be downloaded here, so they are never fetched):

* ``.npz`` in D4RL ``qlearning_dataset`` layout (``observations, actions, next_observations,
  rewards, terminals``);
* D4RL ``.hdf5`` (top-level ``observations, actions, rewards, terminals``, ``timeouts``; without
  ``next_observations`` they are the following row, episode ends dropped, as ``qlearning_dataset``
  does; ``infos/qpos`` + ``infos/qvel`` become the simulator ``states`` when present);
* Minari ``.hdf5`` (groups ``episode_<i>`` with ``observations`` [T + 1], ``actions``, ``rewards``,
  ``terminations`` [T]; the root's ``env_spec`` JSON names the environment).
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


def robot_name(env: str) -> str:
    """``Hopper-v5`` -> ``hopper`` (D4RL's ``hopper-medium-v2`` -> ``hopper``)."""
    return env.split("-")[0].lower()


def d4rl_hdf5(f) -> dict:
    """Transitions of an open D4RL file (``h5py.File``), ``qlearning_dataset``-style."""
    data = {k: f[k][()] for k in (*KEYS, "timeouts") if k in f}
    if "infos" in f and {"qpos", "qvel"} <= set(f["infos"]):
        data["states"] = np.concatenate([f["infos/qpos"][()], f["infos/qvel"][()]], 1).astype(np.float64)
    if "next_observations" not in data and "observations" in data:
        n = len(data["observations"])
        ends = data.get("timeouts", np.zeros(n, bool)).astype(bool)
        keep = np.flatnonzero(~ends[: n - 1])  # row i -> row i + 1 unless episode i timed out
        data["next_observations"] = data["observations"][keep + 1]
        data = {k: v[keep] if k != "next_observations" else v for k, v in data.items()}
    data.pop("timeouts", None)
    return data


def minari_hdf5(f) -> dict:
    """Transitions of an open Minari file: every episode's T steps, s' = observations[1:]."""
    episodes = sorted((k for k in f if k.startswith("episode_")), key=lambda k: int(k.split("_")[1]))
    parts = {k: [] for k in KEYS}
    for name in episodes:
        ep = f[name]
        obs = ep["observations"][()]  # [T + 1, ds]
        for key, value in zip(
            KEYS, (obs[:-1], ep["actions"][()], obs[1:], ep["rewards"][()], ep["terminations"][()])
        ):
            parts[key].append(value)
    return {k: np.concatenate(v) for k, v in parts.items() if v}


def read_hdf5(path: Path) -> tuple[dict, dict]:
    """(arrays, manifest) of a D4RL or Minari ``.hdf5``; the manifest holds ``robot`` (the environment
    name without its version, lower case: files of ``Hopper-v4`` serve ``Hopper-v5``) when the file
    names its environment (Minari ``env_spec``, a root ``env`` / ``env_name`` attribute)."""
    import h5py

    with h5py.File(path, "r") as f:
        minari = any(k.startswith("episode_") for k in f)
        data = minari_hdf5(f) if minari else d4rl_hdf5(f)
        attrs = dict(f.attrs)
    names = [json.loads(attrs["env_spec"])["id"]] if "env_spec" in attrs else []
    names += [str(attrs[k]) for k in ("env", "env_name") if k in attrs]
    manifest = {"robot": robot_name(names[-1])} if names else {}
    data = {k: np.asarray(v, dtype=np.float64 if k == "states" else np.float32) for k, v in data.items()}
    return data, manifest


def load(path: Path, expected: dict) -> dict:
    """The arrays of ``path`` (``.npz`` or ``.hdf5``); ``ValueError`` if its manifest (the JSON next to
    it, or the file's own metadata) disagrees with ``expected`` on any key both name, or if a D4RL
    key is missing or the arrays' lengths differ."""
    path, manifest_path = Path(path), Path(path).with_suffix(".json")
    if path.suffix in (".hdf5", ".h5"):
        data, manifest = read_hdf5(path)
    else:
        with np.load(path) as f:
            data, manifest = {k: f[k] for k in f.files}, {}
    if manifest_path.exists():
        manifest |= json.loads(manifest_path.read_text())
    wrong = {k: (manifest[k], v) for k, v in expected.items() if k in manifest and manifest[k] != v}
    if wrong:
        detail = "; ".join(f"{k}: file has {a!r}, environment needs {b!r}" for k, (a, b) in wrong.items())
        raise ValueError(f"dataset manifest of {path} does not match the environment: {detail}")
    missing = [k for k in KEYS if k not in data]
    if missing:
        raise ValueError(f"dataset {path} lacks the D4RL keys {missing}")
    lengths = {k: len(data[k]) for k in (*KEYS, "states") if k in data}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"dataset {path} arrays differ in length: {lengths}")
    return data


def cached(path: Path, manifest: dict, generate: Callable[[], dict]) -> dict:
    """Load the dataset at ``path`` if present (manifest checked), else generate and save it.
    Generation is deterministic in the manifest, so the file is a cache, never a source of truth."""
    if not Path(path).exists():
        save(Path(path), generate(), manifest)
    return load(Path(path), manifest)
