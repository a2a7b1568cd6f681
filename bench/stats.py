"""Statistics for benchmark numbers: a median with its confidence interval, and the one rule that decides
whether A beats B.

Pure (NumPy and SciPy, no framework, no pytest) and tested against hand-computed values in tests/test_stats.py.

- `summarize`: median, a distribution-free confidence interval for the median (order statistics, exact binomial
  coverage, no normality assumed), and the coefficient of variation.
- `compare`: "a", "b" or "tie" — a winner only when the difference is significant at 95 %:
  * proportions (accuracy on n test samples): two-proportion z-test;
  * positive quantities (throughput, time, memory) with at least two values on both sides: Welch's t-test on the
    logarithms (ratios, not differences, are what vary between runs);
  * a single value on either side: the log ratio against the metric's stated run-to-run noise (`noise`, a
    relative standard deviation measured on repeated runs); without a stated noise, a tie — one number cannot
    show significance.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    ci_low: float
    ci_high: float
    ci_level: float  # the interval's exact coverage: >= CONFIDENCE from n = 6 on, less below (then it is the range)
    cv: float | None  # sample standard deviation / mean; None for n < 2

    def to_dict(self) -> dict:
        return asdict(self)


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float]:
    """1-based ranks (lo, hi) of the order statistics bounding the median, and the interval's exact coverage.

    The interval [x_(k), x_(n+1-k)] covers the median with probability 1 - 2 P(Binomial(n, 1/2) <= k - 1);
    k is the largest rank keeping that at or above `confidence`. Below n = 6 no rank reaches 95 %: the range.
    """
    if n < 1:
        raise ValueError("no values")
    alpha_half = (1 - confidence) / 2
    k = 1
    while k < (n + 1) // 2 and scipy_stats.binom.cdf(k, n, 0.5) <= alpha_half:
        k += 1
    coverage = 1 - 2 * scipy_stats.binom.cdf(k - 1, n, 0.5)
    return k, n + 1 - k, float(coverage)


def summarize(values: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    data = np.sort(np.asarray(values, dtype=np.float64))
    if data.size == 0:
        raise ValueError("no values to summarize")
    lo, hi, coverage = median_ci_ranks(data.size, confidence)
    cv = float(data.std(ddof=1) / data.mean()) if data.size > 1 and data.mean() != 0 else None
    return Summary(n=int(data.size), median=float(np.median(data)), ci_low=float(data[lo - 1]),
                   ci_high=float(data[hi - 1]), ci_level=coverage, cv=cv)


def relative_halfwidth(values: Sequence[float], confidence: float = CONFIDENCE) -> float | None:
    """Half-width of the t-interval of the mean of log(values), as a fraction of the centre: how precisely repeats
    pin a positive quantity down (0.05: within about ±5 %). None for fewer than two values."""
    logs = np.log(np.asarray(values, dtype=np.float64))
    if logs.size < 2:
        return None
    half = scipy_stats.t.ppf(0.5 + confidence / 2, logs.size - 1) * logs.std(ddof=1) / math.sqrt(logs.size)
    return float(math.expm1(half))


@dataclass(frozen=True)
class Measure:
    """What one side of a comparison knows about a metric.

    `values`: per-repeat values (or per-window samples within one process); for a proportion, the per-repeat
    proportions. `trials`: for a proportion, the test samples it was measured on. `noise`: the metric's
    relative run-to-run standard deviation, used when there is only one value.
    """
    values: tuple[float, ...]
    higher_is_better: bool
    trials: int | None = None
    noise: float | None = None


@dataclass(frozen=True)
class Verdict:
    winner: str  # "a", "b" or "tie"
    ratio: float | None  # a / b of the central values
    p_value: float | None
    method: str


def compare(a: Measure, b: Measure, confidence: float = CONFIDENCE) -> Verdict:
    """Which of a and b is better, or "tie" when the difference is not significant at `confidence`."""
    if not a.values or not b.values:
        return Verdict("tie", None, None, "a side has no value")
    if a.trials is not None and b.trials is not None:
        p_value, method = _two_proportions(a, b), "two-proportion z-test"
        center_a, center_b = float(np.mean(a.values)), float(np.mean(b.values))
    else:
        log_a, log_b = np.log(np.asarray(a.values, float)), np.log(np.asarray(b.values, float))
        center_a, center_b = float(np.exp(np.median(log_a))), float(np.exp(np.median(log_b)))
        if log_a.size >= 2 and log_b.size >= 2:
            if np.ptp(log_a) == 0 and np.ptp(log_b) == 0:
                p_value = 0.0 if log_a[0] != log_b[0] else 1.0
            else:
                p_value = float(scipy_stats.ttest_ind(log_a, log_b, equal_var=False).pvalue)
            method = "Welch t-test on logs"
        else:
            noise = max(a.noise or 0.0, b.noise or 0.0)
            if noise == 0:
                return Verdict("tie", center_a / center_b, None, "one value and no stated noise: not testable")
            spread = noise * math.sqrt(1 / log_a.size + 1 / log_b.size)
            z = abs(math.log(center_a / center_b)) / spread
            p_value, method = float(2 * scipy_stats.norm.sf(z)), f"z-test on log ratio, noise {noise:.1%}"
    ratio = center_a / center_b if center_b else None
    if p_value is None or not p_value < 1 - confidence or center_a == center_b:
        return Verdict("tie", ratio, p_value, method)
    a_is_higher = center_a > center_b
    return Verdict("a" if a_is_higher == a.higher_is_better else "b", ratio, p_value, method)


def _two_proportions(a: Measure, b: Measure) -> float:
    """Repeats of a cell see the same test set with the same seed, so they add no independent trials."""
    n_a, n_b = a.trials, b.trials
    p_a, p_b = float(np.mean(a.values)), float(np.mean(b.values))
    pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0 if p_a == p_b else 0.0
    return float(2 * scipy_stats.norm.sf(abs(p_a - p_b) / spread))
