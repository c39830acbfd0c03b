"""The social-media setting: subpopulation personas and their posts.

LLM Active Alignment (arXiv:2602.06836) represents each subpopulation by an LLM aligned to that
group; here (a reconstruction) a group is an offline LLM with a persona system prompt, and an agent
playing w_k posts as persona d with probability w_kd. Each persona has a ``statement`` (what the group
approves of, embedded to measure approval) and a ``system`` prompt (how its posts are generated).
Persona d's j-th post of replica r is generated with generation seed ``r * 1000 + j``,
so posts are shared between settings and cached.
"""

from pydantic import BaseModel, ConfigDict

POST_PROMPT = (
    "Write a short social media post, as a {name}, about the future of our country."  # same topic for all
)


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str  # short label
    statement: str  # the group's view: the anchor its approval is measured against
    system: str  # the system prompt the persona's posts are generated with

    @property
    def prompt(self) -> str:
        return POST_PROMPT.format(name=self.name)


DEFAULT_PERSONAS = (
    Persona(
        name="progressive",
        statement=(
            "We need universal healthcare, higher minimum wages and stronger protections for workers."
        ),
        system=(
            "You are a progressive activist who fights for workers' "
            "rights, public healthcare and social justice."
        ),
    ),
    Persona(
        name="conservative",
        statement="Lower taxes, traditional family values, faith and secure borders keep our nation strong.",
        system="You are a conservative who values tradition, family, faith, low taxes and strong borders.",
    ),
    Persona(
        name="libertarian",
        statement=(
            "Government should stay out of our lives: free markets, individual liberty, fewer regulations."
        ),
        system="You are a libertarian who wants minimal government, free markets and personal freedom.",
    ),
    Persona(
        name="environmentalist",
        statement=(
            "Climate change is an emergency: switch to clean energy and protect forests, oceans and wildlife."
        ),
        system="You are an environmental activist who cares about climate change, clean energy and nature.",
    ),
)


def post_seed(replica: int, j: int) -> int:
    """The generation seed of a persona's j-th post in replica ``replica``."""
    return replica * 1000 + j


def replica_id(seed: int, index: int) -> int:
    """The generation-seed base of instance ``index`` in a run seeded ``seed`` (seed 0, instance 0 -> 0)."""
    return seed * 100 + index
