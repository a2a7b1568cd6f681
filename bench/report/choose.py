"""Choosing a framework: a weighted score over seven criteria, computed here for the default ranking (what a page
without JavaScript shows) and recomputed by the page's script, with the same formula, as the reader moves the
weights. The script only sums; every per-criterion score comes from here, so the two cannot disagree.

Per criterion and setting, each framework scores between 0 and 1, continuously in its distance from the best:
- speed, latency, memory, import time, first step and energy, on a log scale: 1 - log10(ratio to the best) / 2, so twice
  as slow scores 0.85, ten times 0.5, a hundred times 0;
- accuracy, in points: 1 - (best - value) / 0.10, so each percentage point below the best costs 0.1;
- 0 when it has no value where others have one (not measured, or failed).
A tie is shown, not scored: the ranking marks the leader and every framework `bench.aggregate.leaders` finds not
significantly different from it, but the score stays the formula's. Lifting ties to 1 would put a cliff at the
significance line, two nearly equal frameworks on either side of it scoring far apart.
A criterion nobody measured in a setting (accuracy on synthetic data, energy on a device without counters) is left
out. The total is
sum(weight x score) / sum(weight) over the criteria left, shown from 0 to 100.
The best is the best value among groups not measured under contention; a contended group is scored against it
but listed after the others, flagged, without a rank. A ranking is provisional while a group in it has fewer than
`bench.aggregate.FIRM_REPEATS` successful repeats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bench import aggregate
from bench.catalogue import (ACCURACY, FIRST_STEP, GPU_MEMORY, HOST_MEMORY, LATENCY, LAUNCH, TRAIN_ENERGY, TRAIN_SPEED,
                             Metric)

LOG_DECADES = 2.0  # a hundred times worse than the best scores 0
ACCURACY_SPAN = 0.10  # ten percentage points below the best scores 0


@dataclass(frozen=True)
class Choice:
    key: str
    title: str
    criterion: Metric
    scale: str  # "log" or "points"
    short: str  # a column heading


def choices(device: str) -> tuple[Choice, ...]:
    """The seven criteria; memory is the GPU's on a GPU and the host's otherwise. Startup is split in two, import
    (paid by every process) and the first step (tracing and compilation, paid once per model and shape)."""
    gpu = device == "cuda"
    return (Choice("train", "training speed", TRAIN_SPEED, "log", "train"),
            Choice("inference", "inference latency", LATENCY, "log", "latency"),
            Choice("accuracy", "accuracy", ACCURACY, "points", "accuracy"),
            Choice("memory", "GPU memory" if gpu else "memory", GPU_MEMORY if gpu else HOST_MEMORY, "log",
                   "GPU mem." if gpu else "memory"),
            Choice("import", "import time", LAUNCH, "log", "import"),
            Choice("compile", "compile / first step", FIRST_STEP, "log", "1st step"),
            Choice("energy", "energy to train", TRAIN_ENERGY, "log", "energy"))


CRITERION_KEYS = tuple(choice.key for choice in choices("cpu"))

#: Weights from 0 to 5 per criterion, for common needs. "balanced", the default ranking, is led by training speed,
#: then latency and accuracy; memory, import time and the first step count least.
PRESETS: dict[str, dict[str, int]] = {
    "balanced": {"train": 3, "inference": 2, "accuracy": 2, "memory": 1, "import": 1, "compile": 1, "energy": 1},
    "research prototyping": {"train": 3, "inference": 0, "accuracy": 2, "memory": 0, "import": 2, "compile": 3,
                             "energy": 0},
    "production inference": {"train": 0, "inference": 5, "accuracy": 3, "memory": 2, "import": 1, "compile": 1,
                             "energy": 1},
    "memory-constrained": {"train": 1, "inference": 1, "accuracy": 2, "memory": 5, "import": 0, "compile": 0,
                           "energy": 0},
    "training at scale": {"train": 5, "inference": 0, "accuracy": 3, "memory": 1, "import": 0, "compile": 0,
                          "energy": 3},
}
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class Entry:
    label: str
    scores: dict[str, float | None]  # per criterion key; None: no value (counts as 0)
    total: float  # 0..1 under the default weights
    standing: dict[str, str]  # per criterion key where it is level with the best: "leader" or "tied"
    contention: str | None  # why it is flagged and not ranked; None when measured without contention


@dataclass(frozen=True)
class Ranking:
    criteria: tuple[Choice, ...]
    measured: tuple[str, ...]  # criterion keys at least one framework measured in this setting
    entries: list[Entry]  # best first under the default weights, the contended after the others
    unranked: list[tuple[str, str]]  # (label, why): groups without a successful repeat


def criterion_scores(groups: list[aggregate.Group], choice: Choice) -> dict[str, float]:
    """Score in [0, 1] of each group that measured the criterion, against the best uncontended value (see the
    module docstring)."""
    field = choice.criterion.name
    sign = 1 if choice.criterion.higher_is_better else -1
    measured = [g for g in groups if g.central(field) is not None]
    # against the best uncontended value; where every group was contended, against the best of them (all flagged,
    # none ranked), so the page still shows how far apart they measured instead of a row of zeros
    trusted = [g.central(field) for g in measured if g.contention is None] or [g.central(field) for g in measured]
    if not trusted:
        return {}
    best = max(trusted, key=lambda value: sign * value)
    scores = {}
    for group in groups:
        value = group.central(field)
        if value is None:
            continue
        if choice.scale == "points":
            score = 1 - sign * (best - value) / ACCURACY_SPAN
        elif value <= 0 or best <= 0:
            score = 0.0
        else:
            score = 1 - sign * math.log10(best / value) / LOG_DECADES
        scores[group.label] = min(1.0, max(0.0, score))
    return scores


def standings(groups: list[aggregate.Group], choice: Choice) -> dict[str, str]:
    """Who is level with the best on the criterion, by label: "leader", or "tied" when `bench.aggregate.leaders`
    finds no significant difference. Shown beside the score; it does not change it."""
    lead = aggregate.leaders(groups, choice.criterion)
    if lead is None or not lead.verdicts:  # a leader needs another that measured it
        return {}
    return {lead.leader.label: "leader", **{group.label: "tied" for group in lead.tied}}


def total(scores: dict[str, float | None], weights: dict[str, float], measured: tuple[str, ...]) -> float:
    """The weighted mean of the scores over the measured criteria; a missing score counts as 0."""
    weight_sum = sum(weights.get(key, 0) for key in measured)
    if weight_sum <= 0:
        return 0.0
    return sum(weights.get(key, 0) * (scores.get(key) or 0.0) for key in measured) / weight_sum


def rank(groups: list[aggregate.Group], device: str,
         weights: dict[str, float] = PRESETS[DEFAULT_PRESET]) -> Ranking:
    criteria = choices(device)
    per_criterion = {choice.key: criterion_scores(groups, choice) for choice in criteria}
    level = {choice.key: standings(groups, choice) for choice in criteria}
    measured = tuple(key for key, scores in per_criterion.items() if scores)
    ranked = [group for group in groups if group.ok]
    entries = []
    for group in ranked:
        scores = {key: per_criterion[key].get(group.label) for key in CRITERION_KEYS}
        standing = {key: level[key][group.label] for key in CRITERION_KEYS if group.label in level[key]}
        entries.append(Entry(group.label, scores, total(scores, weights, measured), standing, group.contention))
    entries.sort(key=lambda entry: (entry.contention is not None, -entry.total, entry.label))
    unranked = [(group.label, "no successful repeat (" + ", ".join(sorted({r["status"] for r in group.records}))
                 + ")") for group in groups if not group.ok]
    return Ranking(criteria, measured, entries, unranked)


def page_data(rankings: dict[str, Ranking]) -> dict:
    """What the page's script needs, keyed by setting anchor: scores per framework, presets, criteria."""
    return {
        "criteria": [{"key": key, "title": choice.title} for key, choice in
                     zip(CRITERION_KEYS, choices("cpu"))],
        "presets": PRESETS,
        "default": DEFAULT_PRESET,
        "settings": {anchor: {"measured": list(ranking.measured),
                              "entries": [{"label": e.label, "scores": e.scores,
                                           "contended": e.contention is not None} for e in ranking.entries]}
                     for anchor, ranking in rankings.items()},
    }
