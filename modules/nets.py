"""Small generic networks shared by the methods' learners."""

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state


class MLP(nn.Sequential):
    """``in_features -> hidden... -> out_features`` with ``activation`` between linear layers.

    Configured as ``conf/model/mlp.yaml`` (``_partial_: true``): a learner receives the partial and
    calls it with its own input/output sizes, ``model(in_features=..., out_features=...)``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: Sequence[int] = (64, 64),
        activation: type[nn.Module] = nn.ReLU,
    ):
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), activation()]
        super().__init__(*layers, nn.Linear(sizes[-1], out_features))


class Ensemble(nn.Module):
    """``n`` independent copies of a network, evaluated in one batched call (``torch.func.vmap`` over
    stacked parameters): ``forward(x)`` maps ``[n, batch, ...]`` to ``[n, batch, ...]``, member i on
    ``x[i]``. Used to train several independent replicas (seeds) at the price of one; an optimizer
    over ``parameters()`` with a loss summed over members updates each member on its own loss.
    """

    def __init__(self, make: Callable[[], nn.Module], n: int):
        super().__init__()
        members = [make() for _ in range(n)]
        stacked, _ = stack_module_state(members)
        self.names = list(stacked)
        self.stacked = nn.ParameterList(nn.Parameter(stacked[name]) for name in self.names)
        # the architecture only, not a submodule
        object.__setattr__(self, "base", copy.deepcopy(members[0]).to("meta"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def member(params, inputs):
            return functional_call(self.base, params, (inputs,))

        return torch.vmap(member)(dict(zip(self.names, self.stacked)), x)
