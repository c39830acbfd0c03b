"""The query/ad seed set written for this project (NaiAD's own queries and ads are not available).

Eight categories, two user queries and two (fictional) advertised products each; every query is
paired with both ads of its category, giving 32 (query, ad) pairs. Product names are invented so a
brand mention in a response is unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    text: str
    need: str  # the user's intent in a few words (slot of bridge templates and prompts)
    category: str


@dataclass(frozen=True)
class Ad:
    name: str  # ``ad_name``
    label: str  # ``ad_label``: what kind of product it is
    info: str  # ``ad_info``: the advertiser's promise
    category: str


QUERIES = (
    Query("How can I get better sleep when my schedule keeps changing?", "better sleep", "health"),
    Query("What is a simple way to start running as a complete beginner?", "start running", "health"),
    Query("How do I keep my small apartment from feeling cluttered?", "a tidy apartment", "home"),
    Query("What should I consider before repainting my living room?", "repainting a room", "home"),
    Query("How can I learn to cook healthy meals on a tight budget?", "cheap healthy cooking", "food"),
    Query("What are some tips for making good coffee at home?", "good coffee at home", "food"),
    Query("How do I stay focused while working from home?", "focus at home", "productivity"),
    Query("What is a good method for planning a busy week?", "planning the week", "productivity"),
    Query("How can I start saving money when my income is irregular?", "saving money", "finance"),
    Query("Should I pay off debt first or build an emergency fund?", "handling debt", "finance"),
    Query("How do I take sharper photos with my phone at night?", "night photography", "tech"),
    Query("How can I protect my accounts from being hacked?", "account security", "tech"),
    Query("What should I pack for a weekend hiking trip?", "a hiking weekend", "travel"),
    Query("How can I make long flights less exhausting?", "long flights", "travel"),
    Query("How do I help my kids build a reading habit?", "kids' reading", "family"),
    Query("What are good ways to spend quality time with aging parents?", "time with parents", "family"),
)

ADS = (
    Ad(
        "LumaRest",
        "smart sleep mask",
        "blocks light and plays adaptive soundscapes to help you fall asleep faster",
        "health",
    ),
    Ad(
        "StrideLab",
        "running coach app",
        "builds a personal training plan that adapts to your pace and recovery",
        "health",
    ),
    Ad(
        "NestFold",
        "modular storage system",
        "stackable boxes that turn any wall into organised, tidy storage",
        "home",
    ),
    Ad(
        "Chroma & Co",
        "eco-friendly wall paint",
        "low-odour paint with designer colour palettes and one-coat coverage",
        "home",
    ),
    Ad(
        "PantryPal",
        "meal-kit subscription",
        "affordable weekly recipes with pre-portioned healthy ingredients",
        "food",
    ),
    Ad(
        "BrewCraft",
        "precision pour-over kettle",
        "temperature control and a gooseneck spout for barista-quality coffee",
        "food",
    ),
    Ad(
        "DeepWork",
        "focus timer app",
        "blocks distractions and tracks deep-work sessions with gentle reminders",
        "productivity",
    ),
    Ad(
        "PlanBoard",
        "digital weekly planner",
        "drag-and-drop planning that syncs tasks, calendar and goals",
        "productivity",
    ),
    Ad(
        "FlexSave",
        "automatic savings app",
        "saves a share of every payment you receive, adjusting to your income",
        "finance",
    ),
    Ad(
        "ClearPath",
        "debt payoff tracker",
        "shows the fastest route out of debt and celebrates each milestone",
        "finance",
    ),
    Ad(
        "NightLens",
        "clip-on phone lens kit",
        "a fast wide lens and mini tripod for crisp low-light photos",
        "tech",
    ),
    Ad(
        "VaultKey",
        "password manager",
        "generates strong passwords and alerts you to breaches instantly",
        "tech",
    ),
    Ad(
        "TrailLite",
        "ultralight backpack",
        "a 900-gram pack with a ventilated back panel for all-day comfort",
        "travel",
    ),
    Ad(
        "SkyComfort",
        "travel neck pillow",
        "memory-foam support that folds into a pocket-sized pouch",
        "travel",
    ),
    Ad(
        "StoryNest",
        "children's book club",
        "age-matched picture and chapter books delivered every month",
        "family",
    ),
    Ad(
        "MemoryLane",
        "photo book service",
        "turns family photos into printed keepsake albums in minutes",
        "family",
    ),
)


def pairs() -> list[tuple[Query, Ad]]:
    """Every query with every ad of its category: 32 (query, ad) pairs, in a fixed order."""
    return [(q, a) for q in QUERIES for a in ADS if a.category == q.category]
