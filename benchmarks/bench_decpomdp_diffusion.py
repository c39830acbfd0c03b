"""Speed of the decpomdp_diffusion analysis (Wang, Dong et al., arXiv:2410.13953) on one core.

Measured in one run, with an (untrained) per-agent epsilon network of the default size:

* fixed-point iteration of ``F_i`` (Tweedie at k0) for B starts per agent: batched (one ensemble call per
  iteration for all agents and starts) vs the reference that iterates each (agent, start) alone;
* Jacobians at B points: ``vmap(jacrev)`` vs a per-point ``torch.autograd.functional.jacobian`` loop.

Ratios are reference / batched time. Run: ``python benchmarks/bench_decpomdp_diffusion.py`` (``make bench``).
"""

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modules.decpomdp_diffusion.fixed_points import iterate_to_fixed_point, jacobians
from modules.decpomdp_diffusion.nets import EpsNet, member_forward, pack
from modules.diffusion import DDPMSchedule, denoise
from modules.nets import Ensemble

D, C, AGENTS, ITERS, K0 = 6, 39, 3, 20, 4  # the CO task's sizes; iterations per start
SCHEDULE = DDPMSchedule(50, 1e-4, 0.2)


def timed(fn, warm: bool = False) -> float:
    """Wall time of ``fn()``; ``warm`` runs it once first (torch.func transforms trace on first use)."""
    if warm:
        fn()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def agent_map(net: Ensemble, i: int, history: torch.Tensor):
    return lambda x: denoise(lambda x_k, k: member_forward(net, i, pack(x_k, k, history)), x, K0, SCHEDULE)


@torch.no_grad()
def fixed_points(net: Ensemble, B: int) -> tuple[float, float]:
    history, x0 = torch.randn(AGENTS, B, C), torch.randn(AGENTS, B, D)

    def F_all(x):
        return denoise(lambda x_k, k: net(pack(x_k, k, history)), x, K0, SCHEDULE)

    batched = timed(lambda: iterate_to_fixed_point(F_all, x0, ITERS, 0.0))
    pairs = [(i, b) for i in range(AGENTS) for b in range(B)]
    reference = timed(
        lambda: [
            iterate_to_fixed_point(agent_map(net, i, history[i, b]), x0[i, b : b + 1], ITERS, 0.0)
            for i, b in pairs
        ]
    )
    return reference, batched


def jacobian_points(net: Ensemble, B: int) -> tuple[float, float]:
    history, x = torch.randn(B, C), torch.randn(B, D)
    batched = timed(lambda: jacobians(lambda xi, h: agent_map(net, 0, h)(xi), x, history), warm=True)
    reference = timed(
        lambda: [torch.autograd.functional.jacobian(agent_map(net, 0, history[b]), x[b]) for b in range(B)]
    )
    return reference, batched


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = Ensemble(lambda: EpsNet(D, C, 128, 3), AGENTS)
    rows = [
        (f"fixed-point iteration, {AGENTS} agents x {B} starts, {ITERS} its", *fixed_points(net, B))
        for B in (16, 64)
    ]
    rows += [(f"Jacobians dF/dx at {B} points", *jacobian_points(net, B)) for B in (16, 64)]
    print("| computation | reference (s) | batched (s) | ratio |\n|---|---|---|---|")
    for name, ref, fast in rows:
        print(f"| {name} | {ref:.3f} | {fast:.3f} | {ref / fast:.1f}x |")


if __name__ == "__main__":
    main()
