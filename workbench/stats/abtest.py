"""Two-sample tests of an A/B experiment on sufficient statistics: SRM, proportions, Welch means, ratios, CUPED.

The engine aggregates each arm (or arm × day, arm × segment) into a few numbers; these dataclasses hold them
and add up, so days, segments and strata re-aggregate without another scan, as GrowthBook's gbstats does.
Variances are kept as centred co-moments merged pairwise (Chan, Golub & LeVeque 1979), never as
Σx² − (Σx)²/n, which loses every significant digit when the mean is large against the spread (10^8 rows).

Conventions (the README's A/B section): proportions get the pooled two-proportion z-test's p-value and an
unpooled Wald interval; means Welch's t-test and its Welch–Satterthwaite interval; ratios the delta method;
relative lifts the delta method. :meth:`Effect.intervals` builds intervals that never contradict the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from workbench.stats import dist
from workbench.stats.proportions import two_proportion_ztest


@dataclass(frozen=True)
class ProportionStats:
    """Successes out of n trials (exact integer counts; they add up)."""

    n: int
    successes: int

    def __add__(self, other: ProportionStats) -> ProportionStats:
        return ProportionStats(self.n + other.n, self.successes + other.successes)

    @property
    def rate(self) -> float:
        """successes / n (NaN when n = 0)."""
        return self.successes / self.n if self.n else math.nan


@dataclass(frozen=True)
class Moments:
    """n observations of k variables as means and centred co-moments C_ij = Σ (x_i − x̄_i)(x_j − x̄_j).

    k = 1 is GrowthBook's SampleMeanStatistic (n, Σx, Σx²); k = 2 its RatioStatistic (numerator,
    denominator) or RegressionAdjustedStatistic (post, pre); k = 3 a ratio with a CUPED covariate.
    ``a + b`` merges two disjoint groups exactly: C = C_a + C_b + δδᵀ·n_a·n_b/n with δ = x̄_b − x̄_a.
    """

    n: int
    mean: tuple[float, ...]
    comoment: tuple[tuple[float, ...], ...]

    @classmethod
    def empty(cls, k: int = 1) -> Moments:
        """No observations of k variables (the neutral element of ``+``)."""
        return cls(0, (0.0,) * k, tuple((0.0,) * k for _ in range(k)))

    @classmethod
    def from_values(cls, *columns: np.ndarray | list[float]) -> Moments:
        """Moments of raw columns of equal length (two-pass: exact centring)."""
        data = np.asarray([np.asarray(c, dtype=float) for c in columns])
        n = data.shape[1]
        if n == 0:
            return cls.empty(len(columns))
        mean = data.mean(axis=1)
        centred = data - mean[:, None]
        return cls._make(n, mean, centred @ centred.T)

    @classmethod
    def from_moments(cls, n: int, mean: list[float], covariance: list[list[float]] | np.ndarray) -> Moments:
        """From n, means and the sample covariance matrix (ddof = 1), as the engine's var_samp/covar_samp give."""
        cov = np.nan_to_num(np.asarray(covariance, dtype=float).reshape(len(mean), len(mean)))
        return cls._make(int(n), np.asarray(mean, dtype=float), cov * max(int(n) - 1, 0))

    @classmethod
    def from_sums(cls, n: int, sums: list[float], sums_of_products: list[list[float]] | np.ndarray) -> Moments:
        """From n, Σx_i and Σx_i·x_j (GrowthBook's inputs); fine for typed-in summaries, lossy at scale."""
        if n <= 0:
            return cls.empty(len(sums))
        s = np.asarray(sums, dtype=float)
        products = np.asarray(sums_of_products, dtype=float).reshape(len(s), len(s))
        return cls._make(int(n), s / n, products - np.outer(s, s) / n)

    @classmethod
    def from_summary(cls, n: int, mean: float, std: float) -> Moments:
        """One variable from n, mean and sample standard deviation (the calculator's ``arm,n,mean,std`` rows)."""
        return cls.from_moments(n, [mean], [[std * std]])

    @classmethod
    def _make(cls, n: int, mean: np.ndarray, comoment: np.ndarray) -> Moments:
        return cls(int(n), tuple(float(m) for m in mean), tuple(tuple(float(c) for c in row) for row in comoment))

    @property
    def k(self) -> int:
        """Number of variables."""
        return len(self.mean)

    def __add__(self, other: Moments) -> Moments:
        if self.n == 0:
            return other
        if other.n == 0:
            return self
        n = self.n + other.n
        mean_a, mean_b = np.asarray(self.mean), np.asarray(other.mean)
        delta = mean_b - mean_a
        comoment = (
            np.asarray(self.comoment) + np.asarray(other.comoment) + np.outer(delta, delta) * self.n * other.n / n
        )
        return Moments._make(n, mean_a + delta * other.n / n, comoment)

    def variance(self, i: int = 0) -> float:
        """Sample variance of variable i (ddof = 1; NaN below 2 observations)."""
        return self.comoment[i][i] / (self.n - 1) if self.n > 1 else math.nan

    def covariance(self, i: int, j: int) -> float:
        """Sample covariance of variables i and j (ddof = 1; NaN below 2 observations)."""
        return self.comoment[i][j] / (self.n - 1) if self.n > 1 else math.nan

    def sum(self, i: int = 0) -> float:
        """Σx_i."""
        return self.n * self.mean[i]


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio check: chi-square goodness of fit of units per arm against the planned split."""

    arms: tuple[str, ...]
    counts: tuple[int, ...]
    expected_shares: tuple[float, ...]
    statistic: float | None
    p_value: float | None
    threshold: float
    ok: bool
    message: str


def srm_test(counts: dict[str, int], planned: dict[str, float] | None = None, threshold: float = 0.001) -> SRMResult:
    """Chi-square goodness of fit Σ (o − e)²/e of arm unit counts vs the planned shares (default equal), k − 1 df.

    Equals ``scipy.stats.chisquare(observed, expected)``. p < threshold (0.001, as GrowthBook and Optimizely)
    is a sample-ratio mismatch: assignment or logging is broken and no result can be trusted. An arm with
    zero units is a mismatch, not an error.
    """
    arms = tuple(counts)
    observed = np.asarray([counts[a] for a in arms], dtype=float)
    weights = np.asarray([(planned or {}).get(a, 0.0 if planned else 1.0) for a in arms], dtype=float)
    if planned and (missing := [a for a in arms if a not in planned]):
        raise ValueError(f"no planned share for arm(s) {', '.join(missing)}")
    shares = weights / weights.sum()
    total = observed.sum()
    if len(arms) < 2 or total == 0:
        return SRMResult(arms, tuple(int(c) for c in observed), tuple(shares), None, None, threshold, False,
                         "no units in any arm" if total == 0 else "a single arm: nothing to compare")  # fmt: skip
    expected = shares * total
    statistic = float(((observed - expected) ** 2 / expected).sum())
    p_value = dist.chi2_sf(statistic, len(arms) - 1)
    ok = p_value >= threshold
    parts = ", ".join(
        f"{a} {int(c):,} ({c / total:.1%} vs {s:.1%} planned)" for a, c, s in zip(arms, observed, shares, strict=True)
    )
    message = (
        f"sample ratio OK (p={p_value:.3g}): {parts}"
        if ok
        else f"sample ratio mismatch (p={p_value:.2g} < {threshold:g}): {parts}"
    )
    return SRMResult(arms, tuple(int(c) for c in observed), tuple(float(s) for s in shares), statistic, p_value,
                     threshold, ok, message)  # fmt: skip


@dataclass(frozen=True)
class Intervals:
    """Intervals of one comparison at one level, built so they never contradict its test."""

    level: float
    diff_ci: tuple[float, float] | None
    rel_lift_ci: tuple[float, float] | None
    method: str


@dataclass(frozen=True)
class Effect:
    """Variant vs control on one metric: the estimate, its standard error and the test (NaN where undefined).

    ``df`` is None for normal-reference tests (z) and the Welch–Satterthwaite df for t-tests.
    ``counts`` = (x_control, n_control, x_variant, n_variant) for proportions (the score-interval fallback).
    """

    kind: str
    test: str
    n_control: float
    n_variant: float
    control_mean: float
    variant_mean: float
    diff: float
    se: float
    statistic: float
    p_value: float
    df: float | None = None
    rel_lift: float | None = None
    rel_se: float | None = None
    counts: tuple[int, int, int, int] | None = None
    message: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def defined(self) -> bool:
        """True when the test produced a p-value."""
        return not math.isnan(self.p_value)

    def critical(self, level: float, two_sided: bool = True) -> float:
        """The test's critical value at ``level``: t(df) quantile or normal quantile."""
        q = 1 - level / 2 if two_sided else 1 - level
        return dist.t_ppf(q, self.df) if self.df is not None else dist.norm_ppf(q)

    def intervals(self, level: float) -> Intervals:
        """(1 − level) intervals of the difference and the relative lift that agree with ``p_value ≤ level``.

        The difference: unpooled Wald (proportions) or the test's own interval (Welch, delta method).
        The relative lift: delta method, Var ≈ V_b/m_a² + m_b²·V_a/m_a⁴ (GrowthBook). Near the boundary
        an unpooled interval can exclude 0 while the pooled test does not reject (or the reverse), and the
        delta-method lift can disagree with the test on the difference. Then the interval that disagrees
        is replaced by one inverting the very test that gave the p-value: for proportions the
        Farrington–Manning score interval (uncorrected; at Δ = 0 it is the pooled z-test), otherwise the
        difference's interval divided by the control mean. ``method`` names what was used.
        """
        if not self.defined or math.isnan(self.se):
            return Intervals(level, None, None, "undefined")
        significant = self.p_value <= level
        crit = self.critical(level)
        diff_ci = (self.diff - crit * self.se, self.diff + crit * self.se)
        method = "wald-unpooled" if self.kind == "proportion" else self.test
        if _excludes(diff_ci, 0.0) != significant:
            diff_ci, method = self._test_inverting_diff(level, significant, diff_ci)
        rel_ci = None
        if self.rel_lift is not None and self.rel_se is not None and not math.isnan(self.rel_se):
            rel_ci = (self.rel_lift - crit * self.rel_se, self.rel_lift + crit * self.rel_se)
            if _excludes(rel_ci, 0.0) != significant:
                rel_ci = self._test_inverting_rel(level, significant, diff_ci)
                method += "; relative lift from the test-inverting interval"
        return Intervals(level, diff_ci, rel_ci, method)

    def _test_inverting_diff(self, level: float, significant: bool, fallback: tuple[float, float]) -> tuple:
        if self.kind == "proportion" and self.counts is not None:
            interval = score_interval(*self.counts, level)
            return _agreeing(interval, significant, 0.0), "score (Farrington–Manning), agrees with the pooled test"
        return _agreeing(fallback, significant, 0.0), self.test

    def _test_inverting_rel(self, level: float, significant: bool, diff_ci: tuple[float, float]) -> tuple:
        base = abs(self.control_mean)
        return _agreeing((diff_ci[0] / base, diff_ci[1] / base), significant, 0.0)


def _excludes(interval: tuple[float, float], value: float) -> bool:
    return interval[0] > value or interval[1] < value


def _agreeing(interval: tuple[float, float], significant: bool, null: float) -> tuple[float, float]:
    """Last guard against a root-finder's last digit: the endpoint nearest the null moves onto (or past) it."""
    lo, hi = float(interval[0]), float(interval[1])
    if _excludes((lo, hi), null) == significant:
        return lo, hi
    if not significant:
        return (null, hi) if lo > null else (lo, null)
    step = max(abs(null), 1.0) * 1e-12  # an interval touching the null is read as containing it
    return (null + step, max(hi, null + step)) if lo + hi > 2 * null else (min(lo, null - step), null - step)


def score_interval(xa: int, na: int, xb: int, nb: int, level: float) -> tuple[float, float]:
    """Farrington–Manning score interval for p_b − p_a: {δ : |T(δ)| ≤ z}, without the n/(n − 1) factor.

    T(δ) = (p̂_b − p̂_a − δ)/√(p̃_b(1 − p̃_b)/n_b + p̃_a(1 − p̃_a)/n_a) with (p̃_a, p̃_b = p̃_a + δ) the
    maximum likelihood under p_b − p_a = δ. At δ = 0 that is the pooled rate, so 0 is outside the interval
    exactly when the pooled z-test rejects (Farrington & Manning 1990; Miettinen & Nurminen 1985 add the
    n/(n − 1) factor). Solved by bisection, which does not fail at 0% or 100% as a closed-form cubic can.
    It is the interval statsmodels' ``confint_proportions_2indep(method="score", correction=False)`` means to
    compute, but not what statsmodels 0.14/0.15 returns: its restricted MLE for δ ≠ 0 has ``count0`` where the
    cubic has ``nobs0`` (statsmodels issue 10269), so with unbalanced arms its bounds differ from the likelihood's
    (1.8e-3 for 10/100 vs 400/1000, 5.1e-3 for 620/1000 vs 90/120) or its root finder raises (45/2000 vs 1/200).
    The tests check this interval against the likelihood itself instead: the restricted MLE by maximising the
    binomial log-likelihood numerically, the ends where T(δ) = ∓z (scipy's brentq).
    """
    d_hat = xb / nb - xa / na
    z = dist.norm_isf(level / 2)

    def statistic(delta: float) -> float:
        pa = _restricted_rate(xa, na, xb, nb, delta)
        pb = pa + delta
        var = pb * (1 - pb) / nb + pa * (1 - pa) / na
        if var <= 0:
            return math.copysign(math.inf, d_hat - delta) if d_hat != delta else 0.0
        return (d_hat - delta) / math.sqrt(var)

    lower = _bisect(lambda d: statistic(d) - z, -1.0, d_hat)
    upper = _bisect(lambda d: statistic(d) + z, d_hat, 1.0)
    return lower, upper


def _bisect(f: object, lo: float, hi: float) -> float:
    """Root of a decreasing function on [lo, hi] (or the end it stays on), to the last bit."""
    if f(lo) <= 0:  # type: ignore[operator]
        return lo
    if f(hi) >= 0:  # type: ignore[operator]
        return hi
    for _ in range(200):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if f(mid) > 0:  # type: ignore[operator]
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _ratio(count: float, rate: float) -> float:
    """count/rate, with 0 for a zero count and +inf for a positive count at rate 0."""
    if count == 0:
        return 0.0
    return count / rate if rate > 0 else math.inf


def _restricted_rate(xa: int, na: int, xb: int, nb: int, delta: float) -> float:
    """p̃_a maximising the binomial likelihood of both arms under p_b = p_a + δ (a concave problem)."""
    low, high = max(0.0, -delta), min(1.0, 1.0 - delta)

    def slope(pa: float) -> float:  # d log L / d p_a, decreasing; terms with a zero count vanish
        pb = pa + delta
        return _ratio(xb, pb) - _ratio(nb - xb, 1 - pb) + _ratio(xa, pa) - _ratio(na - xa, 1 - pa)

    eps = 1e-15
    if high - low <= 4 * eps:
        return (low + high) / 2
    if slope(low + eps) <= 0:
        return low
    if slope(high - eps) >= 0:
        return high
    return _bisect(slope, low + eps, high - eps)


def _undefined(kind: str, test: str, n_a: float, n_b: float, m_a: float, m_b: float, message: str) -> Effect:
    nan = math.nan
    return Effect(kind, test, n_a, n_b, m_a, m_b, m_b - m_a, nan, nan, nan, message=message)


def compare_proportions(control: ProportionStats, variant: ProportionStats) -> Effect:
    """Variant − control rate: pooled two-proportion z-test p-value, unpooled standard error for the interval.

    SE = √(p_a(1 − p_a)/n_a + p_b(1 − p_b)/n_b); the p-value equals statsmodels ``proportions_ztest``;
    relative lift p_b/p_a − 1 with delta-method SE √(V_b/p_a² + p_b²·V_a/p_a⁴).
    """
    pa, pb = control.rate, variant.rate
    args = ("proportion", "pooled z", control.n, variant.n, pa, pb)
    if control.n == 0 or variant.n == 0:
        return _undefined(*args, "an arm has no observations")
    test = two_proportion_ztest(variant.successes, variant.n, control.successes, control.n)
    if math.isnan(test.p_value):
        return _undefined(*args, f"every observation is {'a success' if pa == 1 else 'a failure'} in both arms "
                                 f"({pa:.0%}): there is no variation to test")  # fmt: skip
    va, vb = pa * (1 - pa) / control.n, pb * (1 - pb) / variant.n
    rel, rel_se, message = relative_lift(pa, pb, va, vb, "control rate is 0%")
    return Effect(*args, pb - pa, math.sqrt(va + vb), test.statistic, test.p_value, None, rel, rel_se,
                  (control.successes, control.n, variant.successes, variant.n), message)  # fmt: skip


def relative_lift(
    ma: float, mb: float, va: float, vb: float, why: str
) -> tuple[float | None, float | None, str | None]:
    """(m_b/m_a − 1, its delta-method SE √(V_b/m_a² + m_b²·V_a/m_a⁴), None) or (None, None, why) when m_a = 0."""
    if ma == 0:
        return None, None, f"relative lift undefined: {why}"
    return mb / ma - 1, math.sqrt(vb / ma**2 + mb**2 * va / ma**4), None


def compare_means(control: Moments, variant: Moments, i: int = 0) -> Effect:
    """Variant − control mean by Welch's t-test with the Welch–Satterthwaite df (unequal variances).

    t = Δ/√(s_a²/n_a + s_b²/n_b), df = (v_a + v_b)²/(v_a²/(n_a − 1) + v_b²/(n_b − 1)) with v = s²/n;
    equals ``scipy.stats.ttest_ind(b, a, equal_var=False)``. Relative lift by the delta method.
    """
    ma, mb = (control.mean[i] if control.n else math.nan), (variant.mean[i] if variant.n else math.nan)
    args = ("mean", "welch t", control.n, variant.n, ma, mb)
    if min(control.n, variant.n) < 2:
        return _undefined(*args, f"an arm has {min(control.n, variant.n)} observation(s): a variance needs two")
    va, vb = control.variance(i) / control.n, variant.variance(i) / variant.n
    if va + vb <= 0:
        return _undefined(*args, f"no variance in either arm (every value is {ma:g} vs {mb:g}): a t-test is undefined")
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (control.n - 1) + vb**2 / (variant.n - 1))
    t = (mb - ma) / se
    rel, rel_se, message = relative_lift(ma, mb, va, vb, "control mean is 0")
    return Effect(*args, mb - ma, se, t, 2 * dist.t_sf(abs(t), df), df, rel, rel_se, message=message)


def ratio_variance(m: Moments) -> float:
    """Delta-method variance of R = ȳ/x̄ over units: (s_y² − 2R·s_xy + R²·s_x²)/(n·x̄²).

    Variable 0 is the numerator, 1 the denominator (both per unit). Deng, Knoblich & Lu (2018),
    "Applying the delta method in metric analytics"; GrowthBook's RatioStatistic.
    """
    r = m.mean[0] / m.mean[1]
    numerator = m.variance(0) - 2 * r * m.covariance(0, 1) + r * r * m.variance(1)
    return max(numerator, 0.0) / (m.n * m.mean[1] ** 2)


def compare_ratios(control: Moments, variant: Moments) -> Effect:
    """Variant − control of a ratio metric Σy/Σx with the randomization unit as the unit: delta method, z-test."""
    valid = [m.n >= 2 and m.mean[1] != 0 for m in (control, variant)]
    ra = control.mean[0] / control.mean[1] if control.n and control.mean[1] else math.nan
    rb = variant.mean[0] / variant.mean[1] if variant.n and variant.mean[1] else math.nan
    args = ("ratio", "delta z", control.n, variant.n, ra, rb)
    if not all(valid):
        return _undefined(*args, "an arm has fewer than two units or a zero denominator")
    va, vb = ratio_variance(control), ratio_variance(variant)
    if va + vb <= 0:
        return _undefined(*args, "no variance in either arm: nothing to test")
    se = math.sqrt(va + vb)
    z = (rb - ra) / se
    rel, rel_se, message = relative_lift(ra, rb, va, vb, "control ratio is 0")
    return Effect(*args, rb - ra, se, z, 2 * dist.norm_sf(abs(z)), None, rel, rel_se, message=message,
                  extra={"var_control": va, "var_variant": vb})  # fmt: skip


@dataclass(frozen=True)
class NonInferiority:
    """One-sided test that the variant is not worse than control by more than ``margin`` (metric units)."""

    margin: float
    bound: float | None
    p_value: float | None
    non_inferior: bool


def non_inferiority(effect: Effect, margin: float, alpha: float, higher_is_better: bool = True) -> NonInferiority:
    """H0: Δ ≤ −margin (or Δ ≥ margin when lower is better), rejected when the one-sided (1 − α) bound clears it.

    Statistic (Δ + margin)/SE against t(df) or the normal, with the unpooled SE for proportions
    (the pooled variance only holds under Δ = 0). ``bound`` is the one-sided confidence bound of Δ.
    """
    if not effect.defined or math.isnan(effect.se) or effect.se == 0:
        return NonInferiority(margin, None, None, False)
    crit = effect.critical(alpha, two_sided=False)
    sign = 1 if higher_is_better else -1
    statistic = (sign * effect.diff + margin) / effect.se
    p = dist.t_sf(statistic, effect.df) if effect.df is not None else dist.norm_sf(statistic)
    bound = effect.diff - sign * crit * effect.se
    return NonInferiority(margin, bound, p, p <= alpha)


@dataclass(frozen=True)
class MannWhitney:
    """Mann–Whitney U of the variant against control: U of the variant sample and the two-sided p-value."""

    u: float
    p_value: float


def mann_whitney_from_ranks(n_control: int, n_variant: int, rank_sum_variant: float, tie_term: float) -> MannWhitney:
    """Two-sided Mann–Whitney U from the variant's rank sum in the pooled sample and Σ(t³ − t) over tie groups.

    U = R − n_b(n_b + 1)/2; z = (max(U, n_a·n_b − U) − n_a·n_b/2 − ½)/σ with
    σ² = n_a·n_b/12·((n + 1) − Σ(t³ − t)/(n(n − 1))); equals ``scipy.stats.mannwhitneyu(b, a,
    method="asymptotic")`` (continuity-corrected normal approximation with the tie correction).
    """
    n1, n2 = float(n_variant), float(n_control)
    n = n1 + n2
    u1 = rank_sum_variant - n1 * (n1 + 1) / 2
    if n1 == 0 or n2 == 0:
        return MannWhitney(math.nan, math.nan)
    sigma2 = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if sigma2 <= 0:
        return MannWhitney(u1, math.nan)
    z = (max(u1, n1 * n2 - u1) - n1 * n2 / 2 - 0.5) / math.sqrt(sigma2)
    return MannWhitney(u1, min(1.0, 2 * dist.norm_sf(z)))


def cap_threshold(values: np.ndarray, percentile: float, nonzero_only: bool = False) -> float:
    """The capping (winsorisation) threshold: the ``percentile`` quantile of all values, or of non-zero ones.

    Linear interpolation, as DuckDB's ``quantile_cont`` and numpy's default. Over non-zero values only,
    a sparse metric (revenue: most units 0) is not capped at 0 (GrowthBook's "ignore zeros").
    """
    values = np.asarray(values, dtype=float)
    pool = values[values != 0] if nonzero_only else values
    return float(np.quantile(pool, percentile)) if len(pool) else math.nan
