"""Small generic networks shared by the methods' learners."""

from collections.abc import Sequence

from torch import nn


class MLP(nn.Sequential):
    """``in_features -> hidden... -> out_features`` with ``activation`` between linear layers.

    Configured as ``conf/model/mlp.yaml`` (``_partial_: true``): a learner receives the partial and
    calls it with its own input/output sizes, ``model(in_features=..., out_features=...)``.
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.ReLU):
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), activation()]
        super().__init__(*layers, nn.Linear(sizes[-1], out_features))
