"""NaiAD's decoupled generation pipeline on the offline LLM (our reconstruction [R] of arXiv 2605.09918).

NaiAD breaks the "dimensional collinearity" of aligned LLMs by generating structurally diverse
samples: responses that disentangle user and commercial utility (high/low each) besides uniformly
strong or weak ones. Our pipeline, per (query, ad) pair:

1. **Stage 1** -- the ``logic_bridge``: one sentence linking the user's need to the ad's promise.
2. **Stage 2** -- the response, conditioned on (query, ad, bridge) and a target profile
   (U, C) in {hi, lo}^2. Every arm sees the same question, product and bridge; the arms differ only
   in the instruction (:func:`response_prompt`), so whatever separates them is the instruction's doing.
3. **Optional rejection** [R] (``max_tries > 1``) -- a response outside its target quadrant by the
   embedding proxies (user proxy vs ``user_cut``, commercial proxy vs ``commercial_cut``) is
   regenerated with the next seed (the last try is kept, ``accepted = False``). With rejection on,
   a decoupling claim must be judged by another scorer than the proxies (the LLM judge); by default
   (``max_tries = 1``) nothing is rejected. The "standard" arm is the un-decoupled baseline.

Every generation goes through the model group's ``LanguageModel.generate``: keyed by (weights,
prompt, seed, decoding settings) in SQLite, so an interrupted run resumes without regenerating.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.naiad.seeds import Ad, Query
from modules.llm import LanguageModel
from modules.naiad.scoring import Proxies

QUADRANTS = {
    "hiU_hiC": (True, True),
    "hiU_loC": (True, False),
    "loU_hiC": (False, True),
    "loU_loC": (False, False),
}
ARMS = (*QUADRANTS, "standard")


def bridge_prompt(query: Query, ad: Ad) -> str:
    return (
        f"User question: {query.text}\nProduct: {ad.name}, a {ad.label} that {ad.info}.\n"
        "In one sentence, explain the link between what the user needs and what this product offers."
    )


def response_prompt(query: Query, ad: Ad, bridge: str, arm: str) -> str:
    """The Stage-2 prompt of one arm: the same context for every arm, then the arm's instruction."""
    context = (
        f"User question: {query.text}\nProduct: {ad.name}, a {ad.label} that {ad.info}.\nLink: {bridge}\n"
    )
    if arm == "standard":
        return context + "Answer the question in two or three sentences and naturally mention the product."
    high_user, high_commercial = QUADRANTS[arm]
    user = (
        "Answer the question helpfully in two or three sentences."
        if high_user
        else "Do not answer the question: write two or three sentences of light small talk instead."
    )
    commercial = (
        f"Recommend {ad.name} by name and end with a call to action such as 'Try {ad.name} today!'"
        if high_commercial
        else "Do not mention the product or any brand."
    )
    return f"{context}{user} {commercial}"


@dataclass
class Response:
    arm: str
    text: str
    tries: int
    accepted: bool
    user: float  # user proxy
    commercial: float  # commercial proxy
    mention: float  # 1.0 if the ad name appears


class DecoupledPipeline:
    """Bridge first, then one response per arm (rejection into the target quadrant if ``max_tries > 1``)."""

    def __init__(
        self,
        generator: LanguageModel,
        proxies: Proxies,
        user_cut: float,
        commercial_cut: float,
        max_tries: int = 1,
        bridge_tokens: int = 32,
        response_tokens: int = 48,
        temperature: float = 0.7,
    ):
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.generator, self.proxies = generator, proxies
        self.user_cut, self.commercial_cut, self.max_tries = user_cut, commercial_cut, max_tries
        self.bridge_tokens, self.response_tokens, self.temperature = (
            bridge_tokens,
            response_tokens,
            temperature,
        )

    def bridge(self, query: Query, ad: Ad, seed: int) -> str:
        return self.generator.generate(
            [bridge_prompt(query, ad)],
            seed=seed,
            max_new_tokens=self.bridge_tokens,
            temperature=self.temperature,
        )[0]

    def in_target(self, arm: str, user: float, commercial: float) -> bool:
        if arm == "standard":
            return True
        high_user, high_commercial = QUADRANTS[arm]
        return (user >= self.user_cut) == high_user and (commercial >= self.commercial_cut) == high_commercial

    def response(self, query: Query, ad: Ad, bridge: str, arm: str, seed: int) -> Response:
        prompt = response_prompt(query, ad, bridge, arm)
        for attempt in range(1, self.max_tries + 1):
            text = self.generator.generate(
                [prompt],
                seed=seed + attempt - 1,
                max_new_tokens=self.response_tokens,
                temperature=self.temperature,
            )[0]
            proxy = self.proxies([query.text], [ad], [text])
            user, commercial, mention = (float(proxy[k][0]) for k in ("user", "commercial", "mention"))
            accepted = self.in_target(arm, user, commercial)
            if accepted:
                break
        return Response(arm, text, attempt, accepted, user, commercial, mention)
