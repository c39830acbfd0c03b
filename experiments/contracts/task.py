"""Tasks of the contracts method (Ivanov et al., arXiv 2407.18074): datasets of principal-agent tree
MDPs and the Coin Game. Every instance is drawn from ``self.rng(index)`` only.
"""

from typing import Annotated, Literal

from pydantic import Field, PositiveInt

from experiments.base import InstanceDataset, Task
from experiments.contracts.coin_game import CoinGameSpec
from experiments.contracts.mdp import PrincipalAgentMDP
from experiments.contracts.trees import paper_tree, random_tree

Probability = Annotated[float, Field(ge=0, lt=1)]
Discount = Annotated[float, Field(gt=0, le=1)]


class ContractTrees(Task):
    """``n_instances`` tree MDPs: the paper's binary-tree model or random finite trees."""

    offers = ("contract_trees",)

    def __init__(
        self,
        n_instances: PositiveInt = 20,
        generator: Literal["random", "paper"] = "random",
        depth: tuple[PositiveInt, PositiveInt] = (2, 6),
        actions: tuple[Annotated[int, Field(ge=2)], Annotated[int, Field(ge=2)]] = (2, 3),
        outcomes: tuple[Annotated[int, Field(ge=2)], Annotated[int, Field(ge=2)]] = (2, 3),
        gammas: tuple[Discount, ...] = (0.9, 1.0),
        transition_noise: Probability = 0.0,
        seed: int = 0,
    ):
        super().__init__(seed)
        for name, (low, high) in (("depth", depth), ("actions", actions), ("outcomes", outcomes)):
            if low > high:
                raise ValueError(f"task.{name}: range [{low}, {high}] is empty")
        if generator == "paper" and (tuple(actions) != (2, 2) or tuple(outcomes) != (2, 2)):
            raise ValueError(
                "task.generator=paper is the binary tree: it needs actions=[2,2] and outcomes=[2,2]"
            )
        self.n_instances, self.generator = n_instances, generator
        self.depth, self.actions, self.outcomes = tuple(depth), tuple(actions), tuple(outcomes)
        self.gammas, self.transition_noise = tuple(gammas), transition_noise

    def make(self, index: int) -> PrincipalAgentMDP:
        rng = self.rng(index)
        depth = int(rng.integers(self.depth[0], self.depth[1] + 1))
        if self.generator == "paper":
            return paper_tree(rng, depth, gamma=self.gammas[int(rng.integers(len(self.gammas)))])
        return random_tree(
            rng,
            depth,
            int(rng.integers(self.actions[0], self.actions[1] + 1)),
            int(rng.integers(self.outcomes[0], self.outcomes[1] + 1)),
            self.gammas[int(rng.integers(len(self.gammas)))],
            self.transition_noise,
        )

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.n_instances, self.make)


class BinaryContractTrees(ContractTrees):
    """Two-action trees (the paper's effort model): what the two-action closed-form learners need."""

    offers = ("contract_trees", "binary_contract_trees")


class CoinGame(Task):
    """The two-agent Coin Game; ``n_instances`` copies of the same game (learners train one replica
    per instance, so the instance index doubles as the replica's seed)."""

    offers = ("coin_game",)

    def __init__(
        self,
        size: Annotated[int, Field(ge=2)] = 3,
        horizon: PositiveInt = 20,
        gamma: Discount = 0.99,
        own_reward: float = 1.0,
        other_reward: float = 0.2,
        respawn: Literal["free", "anywhere"] = "free",
        n_instances: PositiveInt = 1,
        seed: int = 0,
    ):
        super().__init__(seed)
        self.spec = CoinGameSpec(size, horizon, gamma, own_reward, other_reward, respawn)
        self.n_instances = n_instances

    def instances(self) -> InstanceDataset:
        return InstanceDataset(self.n_instances, lambda index: self.spec)
