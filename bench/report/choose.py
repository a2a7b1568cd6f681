"""Choosing a framework: a weighted score over five criteria, computed here for the default ranking (what a page
without JavaScript shows) and recomputed by the page's script, with the same formula, as the reader moves the
weights. The script only sums; every per-criterion score comes from here, so the two cannot disagree.

Per criterion and setting, each framework scores between 0 and 1:
- 1 for the leader and for every framework `bench.aggregate.leaders` finds not significantly different from it
  (the one comparison rule: a difference that is not significant does not cost points);
- speed, latency, memory and startup, on a log scale: 1 - log10(ratio to the best) / 2, so twice as slow scores
  0.85, ten times 0.5, a hundred times 0;
- accuracy, in points: 1 - (best - value) / 0.10, so each percentage point below the best costs 0.1;
- 0 when it has no value where others have one (not measured, or failed).
A criterion nobody measured in a setting (accuracy on synthetic data) is left out. The total is
sum(weight x score) / sum(weight) over the criteria left, shown from 0 to 100.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from bench import aggregate

LOG_DECADES = 2.0  # a hundred times worse than the best scores 0
ACCURACY_SPAN = 0.10  # ten percentage points below the best scores 0


@dataclass(frozen=True)
class Choice:
    key: str
    title: str
    criterion: aggregate.Criterion
    scale: str  # "log" or "points"
    short: str  # a column heading


def choices(device: str) -> tuple[Choice, ...]:
    """The five criteria; memory is the GPU's on a GPU and the host's otherwise."""
    by_field = {criterion.field: criterion for criterion in aggregate.CRITERIA}
    memory = "peak_gpu_nvml_bytes" if device == "cuda" else "peak_host_rss_tree_bytes"
    return (Choice("train", "training speed", by_field["train_samples_per_s"], "log", "train"),
            Choice("inference", "inference latency", by_field["latency_batch1_ms_p50"], "log", "latency"),
            Choice("accuracy", "accuracy", by_field["test_accuracy"], "points", "accuracy"),
            Choice("memory", "GPU memory" if device == "cuda" else "memory", by_field[memory], "log",
                   "GPU mem." if device == "cuda" else "memory"),
            Choice("startup", "startup time", by_field["time_to_first_step_s"], "log", "startup"))


CRITERION_KEYS = tuple(choice.key for choice in choices("cpu"))

#: Weights from 0 to 5 per criterion, for common needs. "balanced" is the default ranking.
PRESETS: dict[str, dict[str, int]] = {
    "balanced": {"train": 1, "inference": 1, "accuracy": 1, "memory": 1, "startup": 1},
    "research prototyping": {"train": 3, "inference": 0, "accuracy": 2, "memory": 0, "startup": 3},
    "production inference": {"train": 0, "inference": 4, "accuracy": 3, "memory": 2, "startup": 1},
    "memory-constrained": {"train": 1, "inference": 1, "accuracy": 2, "memory": 5, "startup": 0},
    "training at scale": {"train": 5, "inference": 0, "accuracy": 3, "memory": 1, "startup": 0},
}
DEFAULT_PRESET = "balanced"


@dataclass(frozen=True)
class Entry:
    label: str
    scores: dict[str, float | None]  # per criterion key; None: no value (counts as 0)
    total: float  # 0..1 under the default weights


@dataclass(frozen=True)
class Ranking:
    criteria: tuple[Choice, ...]
    measured: tuple[str, ...]  # criterion keys at least one framework measured in this setting
    entries: list[Entry]  # best first under the default weights
    unranked: list[tuple[str, str]]  # (label, why): groups without a successful repeat


def criterion_scores(groups: list[aggregate.Group], choice: Choice) -> dict[str, float]:
    """Score in [0, 1] of each group that measured the criterion (see the module docstring)."""
    lead = aggregate.leaders(groups, choice.criterion)
    if lead is None:
        return {}
    field = choice.criterion.field
    best = lead.leader.central(field)
    level_with_best = {lead.leader.label, *(group.label for group in lead.tied)}
    scores = {}
    for group in groups:
        value = group.central(field)
        if value is None:
            continue
        if group.label in level_with_best:
            score = 1.0
        elif choice.scale == "points":
            score = 1 - abs(best - value) / ACCURACY_SPAN
        elif value <= 0 or best <= 0:
            score = 0.0
        else:
            score = 1 - abs(math.log10(value / best)) / LOG_DECADES
        scores[group.label] = min(1.0, max(0.0, score))
    return scores


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
    measured = tuple(key for key, scores in per_criterion.items() if scores)
    ranked = [group for group in groups if group.ok]
    entries = []
    for group in ranked:
        scores = {key: per_criterion[key].get(group.label) for key in CRITERION_KEYS}
        entries.append(Entry(group.label, scores, total(scores, weights, measured)))
    entries.sort(key=lambda entry: (-entry.total, entry.label))
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
                              "entries": [{"label": e.label, "scores": e.scores} for e in ranking.entries]}
                     for anchor, ranking in rankings.items()},
    }
