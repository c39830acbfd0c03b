"""NaiAD's decoupled generation pipeline on the offline LLM (our reconstruction [R] of arXiv 2605.09918).

NaiAD breaks the "dimensional collinearity" of aligned LLMs by generating structurally diverse
samples: responses that disentangle user and commercial utility (high/low each) besides uniformly
strong or weak ones. Our pipeline, per (query, ad) pair:

1. **Stage 1** -- the ``logic_bridge``: one sentence linking the user's need to the ad's promise.
2. **Stage 2** -- the response, conditioned on (query, ad, bridge) and a target profile
   (U, C) in {hi, lo}^2, through per-dimension instructions (:func:`response_prompt`). A 135M model
   does not follow negative instructions, so a "lo" target also *withholds* what it would need:
   lo-U does not show the question, lo-C does not show the product.
3. **Scoring and rejection** -- the response is scored with the embedding proxies and accepted if it
   lands in the target quadrant (user proxy vs ``user_cut``, commercial proxy vs ``commercial_cut``);
   otherwise it is regenerated with the next seed, up to ``max_tries`` (the last try is kept and
   flagged ``accepted = False``). The "standard" arm (answer and naturally include the ad) is the
   un-decoupled baseline and is never rejected.

Every generation goes through ``modules.llm.Generator``: keyed by (model, prompt, seed, decoding
settings) in SQLite, so an interrupted run resumes without regenerating anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from experiments.naiad.seeds import Ad, Query
from modules.llm import Generator
from modules.naiad.scoring import Proxies

QUADRANTS = {"hiU_hiC": (True, True), "hiU_loC": (True, False), "loU_hiC": (False, True), "loU_loC": (False, False)}
ARMS = (*QUADRANTS, "standard")


def bridge_prompt(query: Query, ad: Ad) -> str:
    return (f"User question: {query.text}\nProduct: {ad.name}, a {ad.label} that {ad.info}.\n"
            "In one sentence, explain the link between what the user needs and what this product offers.")


def response_prompt(query: Query, ad: Ad, bridge: str, arm: str) -> str:
    """The Stage-2 prompt of one arm: a user-utility part and a commercial-utility part."""
    if arm == "standard":
        return (f"User question: {query.text}\nAnswer the question in two or three sentences and naturally "
                f"mention {ad.name}, a {ad.label} that {ad.info}.")
    high_user, high_commercial = QUADRANTS[arm]
    user = (f"User question: {query.text}\nAnswer the question helpfully in two or three sentences."
            if high_user else "Write two or three sentences of light small talk. Do not give any advice.")
    commercial = (f"Recommend {ad.name}, a {ad.label} that {ad.info}, by name. Why it fits: {bridge} "
                  f"End with a call to action such as 'Try {ad.name} today!'"
                  if high_commercial else "Do not mention any product, brand or shop.")
    return f"{user}\n{commercial}"


@dataclass
class Response:
    arm: str
    text: str
    tries: int
    accepted: bool
    user: float          # user proxy
    commercial: float    # commercial proxy
    mention: float       # 1.0 if the ad name appears


class DecoupledPipeline:
    """Bridge first, then one response per arm with rejection until the target quadrant is reached."""

    def __init__(self, generator: Generator, proxies: Proxies, user_cut: float, commercial_cut: float,
                 max_tries: int = 2, bridge_tokens: int = 32, response_tokens: int = 48,
                 temperature: float = 0.7):
        if max_tries < 1:
            raise ValueError(f"max_tries must be >= 1, got {max_tries}")
        self.generator, self.proxies = generator, proxies
        self.user_cut, self.commercial_cut, self.max_tries = user_cut, commercial_cut, max_tries
        self.bridge_tokens, self.response_tokens, self.temperature = bridge_tokens, response_tokens, temperature

    def bridge(self, query: Query, ad: Ad, seed: int) -> str:
        return self.generator.generate([bridge_prompt(query, ad)], seed=seed, max_new_tokens=self.bridge_tokens,
                                       temperature=self.temperature)[0]

    def in_target(self, arm: str, user: float, commercial: float) -> bool:
        if arm == "standard":
            return True
        high_user, high_commercial = QUADRANTS[arm]
        return (user >= self.user_cut) == high_user and (commercial >= self.commercial_cut) == high_commercial

    def response(self, query: Query, ad: Ad, bridge: str, arm: str, seed: int) -> Response:
        prompt = response_prompt(query, ad, bridge, arm)
        for attempt in range(1, self.max_tries + 1):
            text = self.generator.generate([prompt], seed=seed + attempt - 1, max_new_tokens=self.response_tokens,
                                           temperature=self.temperature)[0]
            proxy = self.proxies([query.text], [ad], [text])
            user, commercial, mention = (float(proxy[k][0]) for k in ("user", "commercial", "mention"))
            accepted = self.in_target(arm, user, commercial)
            if accepted:
                break
        return Response(arm, text, attempt, accepted, user, commercial, mention)
