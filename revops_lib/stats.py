"""Statistics the metrics share: numbers only (numpy, scipy), no data source, no charts.

- :func:`wilson_interval` — Wilson score interval of a proportion (closed form; the same numbers as
  ``statsmodels.stats.proportion.proportion_confint(method="wilson")``);
- :func:`chi_square_test` — Pearson's chi-square test of independence, no continuity correction;
- :func:`kaplan_meier` — Kaplan–Meier survival with Greenwood ("linear") intervals from grouped
  durations (``scipy.stats.ecdf``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from revops_lib.errors import ParameterError

__all__ = ["z_value", "wilson_interval", "chi_square_test", "kaplan_meier"]


def z_value(confidence: float) -> float:
    """The two-sided normal quantile of a confidence level (1.96 for 0.95)."""
    from scipy.stats import norm

    if not isinstance(confidence, (int, float)) or isinstance(confidence, bool) or not 0 < confidence < 1:
        raise ParameterError(f"`confidence` must be a number between 0 and 1 (e.g. 0.95), not `{confidence!r}`.")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson_interval(converted, entered, *, confidence: float = 0.95):
    """Wilson score interval of a proportion ``converted / entered`` (closed form).

    Parameters
    ----------
    converted, entered : int or array-like
        Successes and trials (``converted <= entered``).
    confidence : float, default 0.95

    Returns
    -------
    (low, high) : tuple of float or of numpy arrays
        NaN where ``entered`` is 0. Same numbers as
        ``statsmodels.stats.proportion.proportion_confint(method="wilson")``.

    Examples
    --------
    >>> low, high = wilson_interval(30, 100)
    >>> round(low, 4), round(high, 4)
    (0.2189, 0.3958)
    """
    z = z_value(confidence)
    k = np.asarray(converted, dtype="float64")
    n = np.asarray(entered, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        z2n = z * z / n
        denom = 1.0 + z2n
        center = (p + z2n / 2.0) / denom
        half = z * np.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n)) / denom
        low = np.where(n > 0, np.where(k <= 0, 0.0, np.clip(center - half, 0.0, 1.0)), np.nan)
        high = np.where(n > 0, np.where(k >= n, 1.0, np.clip(center + half, 0.0, 1.0)), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def chi_square_test(table) -> tuple[float, float, int, float]:
    """Pearson chi-square test of independence (no continuity correction) of a groups × outcomes table.

    Rows that are all zero are dropped first. Returns ``(chi2, p_value, dof, min_expected)``; all NaN
    (dof 0) when fewer than two groups remain or an outcome never occurs. ``min_expected`` below 5
    means the chi-square approximation is weak (:class:`revops_lib.errors.ApproximationWarning`).

    >>> chi2, p, dof, low = chi_square_test([[10, 90], [30, 70]])
    >>> round(chi2, 3), round(p, 5), dof
    (12.5, 0.00041, 1)
    """
    from scipy.stats import chi2_contingency

    table = np.asarray(table, dtype="float64")
    table = table[table.sum(axis=1) > 0]
    if table.shape[0] < 2 or (table.sum(axis=0) == 0).any():
        return math.nan, math.nan, 0, math.nan
    res = chi2_contingency(table, correction=False)
    return float(res.statistic), float(res.pvalue), int(res.dof), float(res.expected_freq.min())


def _at_risk(durations: np.ndarray, counts: np.ndarray, ages: np.ndarray) -> np.ndarray:
    tot = np.bincount(durations.astype("int64"), weights=counts, minlength=len(ages))[: len(ages)]
    return tot[::-1].cumsum()[::-1]


def kaplan_meier(durations, events, counts, *, confidence: float = 0.95) -> pd.DataFrame:
    """Kaplan–Meier survival at every whole age from grouped durations.

    Parameters
    ----------
    durations : array of int
        Time to the event or to censoring (whole units, e.g. months), one per group of subjects.
    events : array of bool
        Whether the group's subjects had the event (else they are censored at ``durations``).
    counts : array of int
        Subjects per group.
    confidence : float
        Level of the Greenwood ("linear") interval.

    Returns
    -------
    DataFrame
        ``age, at_risk, churned, survival, ci_low, ci_high`` for ages 0 … max duration. The curve is 1
        with no uncertainty before the first event; the interval is NaN where the curve reaches 0.
    """
    from scipy import stats

    durations = np.asarray(durations)
    events = np.asarray(events).astype(bool)
    counts = np.asarray(counts)
    d = np.repeat(durations.astype("float64"), counts)
    e = np.repeat(events, counts)
    max_age = int(d.max())
    ages = np.arange(0, max_age + 1)
    at_risk = _at_risk(durations, counts, ages)
    churned = np.bincount(durations[events].astype("int64"), weights=counts[events],
                          minlength=max_age + 1)[: max_age + 1]
    if not e.any():  # nobody had the event: the curve stays at 1, the interval is a point
        surv = np.ones(len(ages))
        low = high = surv.copy()
    else:
        sf = stats.ecdf(stats.CensoredData(uncensored=d[e], right=d[~e])).sf
        surv = sf.evaluate(ages)
        with warnings.catch_warnings():  # undefined where the curve reaches 0: left NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            ci = sf.confidence_interval(confidence_level=confidence, method="linear")
        low, high = ci.low.evaluate(ages), ci.high.evaluate(ages)
        before = ages < sf.quantiles.min()  # before the first event the curve is exactly 1
        low = np.where(before, 1.0, low)
        high = np.where(before, 1.0, high)
    return pd.DataFrame({"age": ages.astype("int64"), "at_risk": at_risk.astype("int64"),
                         "churned": churned.astype("int64"), "survival": surv, "ci_low": low, "ci_high": high})
