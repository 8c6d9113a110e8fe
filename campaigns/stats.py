"""Campaign statistics: lift of the treated group over the control group, and the split check.

Pure on purpose: standard library only (no Django, no numpy or scipy), and it works from each
group's summary statistics, so the results task aggregates in SQL and hands in a few numbers.

Method, as quoted in the campaign results' help text:
- **Means** (revenue, purchases, points per member): Welch's t-test, which does not assume equal
  variances. The difference of means has the standard error sqrt(s_c²/n_c + s_t²/n_t) and the
  Welch–Satterthwaite degrees of freedom; the p-value is two-sided, from Student's t. The absolute
  lift (treatment mean − control mean) gets a confidence interval from the same t quantile.
- **Proportions** (conversion, redemption rate): the absolute lift's interval uses the unpooled
  standard error sqrt(p_c(1−p_c)/n_c + p_t(1−p_t)/n_t) and the normal quantile; the p-value comes
  from the two-proportion z-test (pooled standard error under the null hypothesis of no difference),
  two-sided.
- **Relative lift** (absolute lift / control mean): an interval by the delta method,
  Var(m_t/m_c) ≈ Var(m_t)/m_c² + m_t²·Var(m_c)/m_c⁴ for independent groups; with the t quantile
  for means and the normal one for proportions.
- **Sample-ratio mismatch**: a chi-square goodness-of-fit test (1 degree of freedom) of the
  observed control/treatment counts against the configured control share. A tiny p-value (below
  0.001 by default) means the split is not what was configured and the results should not be
  trusted until the cause is found.

Whatever the data cannot support is ``None``, never an exception or a NaN: a group with fewer than
two members has no variance (no interval, no p-value), two groups without any variance have no
standard error, and a control mean of zero has no relative lift.

Numerics: Student's t distribution through the regularised incomplete beta function, evaluated by
its continued fraction (Numerical Recipes, 3rd ed., §6.4, ``betai``/``betacf``); its quantile by
bisection on the two-sided tail; the normal quantile by Acklam's algorithm refined with one Halley
step on ``math.erfc``; the chi-square (1 df) tail as erfc(√(χ²/2)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "Lift",
    "MeanGroup",
    "ProportionGroup",
    "SampleRatio",
    "mean_lift",
    "normal_ppf",
    "proportion_lift",
    "sample_ratio_mismatch",
    "student_t_ppf",
    "student_t_two_sided_p",
]

# Below this share of the sum of squares, n·variance is taken for float cancellation and set to
# zero: ten identical values of 0.1 must have no variance, not 1e-18 and a t of a billion.
_CANCELLATION = 1e-10


class MeanGroup(NamedTuple):
    """One group's summary of a per-member measure: members, Σx, Σx²."""

    n: int
    sum: float
    sum_of_squares: float


class ProportionGroup(NamedTuple):
    """One group's summary of a yes/no measure: members, members with "yes"."""

    n: int
    successes: int


@dataclass(frozen=True)
class Lift:
    """Treatment against control. ``None`` wherever the data cannot support a figure."""

    absolute: float | None
    absolute_ci: tuple[float, float] | None
    relative: float | None
    relative_ci: tuple[float, float] | None
    p_value: float | None
    control_mean: float | None
    treatment_mean: float | None
    n_control: int
    n_treatment: int
    confidence: float


@dataclass(frozen=True)
class SampleRatio:
    """The chi-square check of the observed split against the configured one."""

    chi_square: float | None
    p_value: float | None
    mismatch: bool
    expected_control_share: float
    observed_control_share: float | None


# --- Distributions -------------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Numerical Recipes' ``betacf``).

    Modified Lentz's method. It converges fast for x < (a+1)/(a+b+2), in about √max(a, b)
    steps, so the iteration limit grows with the degrees of freedom instead of being fixed.
    """
    tiny = 1e-300
    eps = 1e-16
    max_iterations = 200 + int(10 * math.sqrt(max(a, b)))
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    if abs(d) < tiny:
        d = tiny
    d = 1.0 / d
    h = d
    for m in range(1, max_iterations + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        if abs(d) < tiny:
            d = tiny
        c = 1.0 + aa / c
        if abs(c) < tiny:
            c = tiny
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betai(a: float, b: float, x: float, y: float) -> float:
    """The regularised incomplete beta function I_x(a, b), with y = 1 − x given exactly.

    Taking y from the caller keeps the tail precise when x is within rounding of 1.
    """
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, y) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| ≥ |t|) for Student's t with ``df`` (real, > 0) degrees of freedom."""
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if math.isinf(t):
        return 0.0
    t2 = t * t
    # P(|T| ≥ |t|) = I_{df/(df+t²)}(df/2, 1/2)
    return _betai(df / 2.0, 0.5, df / (df + t2), t2 / (df + t2))


def student_t_ppf(p: float, df: float) -> float:
    """The quantile of Student's t: the t with P(T ≤ t) = p.

    Bisection on the two-sided tail, which is monotonic and computed without cancellation,
    to a relative width of 1e-14.
    """
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if df <= 0:
        raise ValueError("degrees of freedom must be positive")
    if p == 0.5:
        return 0.0
    tail = 2.0 * min(p, 1.0 - p)  # two-sided tail at the |t| we are looking for
    low, high = 0.0, max(1.0, abs(normal_ppf(p)))
    while student_t_two_sided_p(high, df) > tail:
        low, high = high, high * 2.0
    for _ in range(400):
        middle = (low + high) / 2.0
        if student_t_two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
        if high - low <= 1e-14 * high:
            break
    quantile = (low + high) / 2.0
    return quantile if p > 0.5 else -quantile


# Acklam's rational approximations of the normal quantile (relative error below 1.15e-9 before
# the refinement step).
_A = (
    -3.969683028665376e01,
    2.209460984245205e02,
    -2.759285104469687e02,
    1.383577518672690e02,
    -3.066479806614716e01,
    2.506628277459239e00,
)
_B = (
    -5.447609879822406e01,
    1.615858368580409e02,
    -1.556989798598866e02,
    6.680131188771972e01,
    -1.328068155288572e01,
)
_C = (
    -7.784894002430293e-03,
    -3.223964580411365e-01,
    -2.400758277161838e00,
    -2.549732539343734e00,
    4.374664141464968e00,
    2.938163982698783e00,
)
_D = (
    7.784695709041462e-03,
    3.224671290700398e-01,
    2.445134137142996e00,
    3.754408661907416e00,
)
_P_LOW = 0.02425


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """The quantile of the standard normal distribution (Acklam, refined by one Halley step)."""
    if not 0.0 < p < 1.0:
        raise ValueError("p must be strictly between 0 and 1")
    if p < _P_LOW:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
        )
    elif p <= 1.0 - _P_LOW:
        q = p - 0.5
        r = q * q
        x = (
            (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5])
            * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0)
        )
    else:
        q = math.sqrt(-2.0 * math.log1p(-p))
        x = -(((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5]) / (
            (((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0
        )
    # Halley's step on the CDF error; the upper half is refined on its own tail so that
    # p = 0.999… loses no digits to 1 − p.
    if p > 0.5:
        error = 0.5 * math.erfc(x / math.sqrt(2.0)) - (1.0 - p)
        error = -error
    else:
        error = _normal_cdf(x) - p
    u = error * math.sqrt(2.0 * math.pi) * math.exp(x * x / 2.0)
    return x - u / (1.0 + x * u / 2.0)


def _normal_two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


# --- Lifts ---------------------------------------------------------------------------------------


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be strictly between 0 and 1")


def _interval(centre: float, half_width: float) -> tuple[float, float]:
    return (centre - half_width, centre + half_width)


def _relative_se(
    control_mean: float, treatment_mean: float, var_mean_c: float, var_mean_t: float
) -> float:
    """Delta-method standard error of m_t/m_c for independent groups."""
    c2 = control_mean * control_mean
    return math.sqrt(var_mean_t / c2 + treatment_mean * treatment_mean * var_mean_c / (c2 * c2))


def _mean_group(group: MeanGroup | tuple) -> MeanGroup:
    n, total, squares = group
    if n < 0 or squares < 0:
        raise ValueError("a group's size and sum of squares cannot be negative")
    return MeanGroup(int(n), float(total), float(squares))


def _variance(group: MeanGroup) -> float | None:
    """The sample variance (n − 1 in the denominator), or None below two members."""
    if group.n < 2:
        return None
    spread = group.sum_of_squares - group.sum * group.sum / group.n
    if spread <= _CANCELLATION * group.sum_of_squares:
        spread = 0.0
    return spread / (group.n - 1)


def mean_lift(
    control: MeanGroup | tuple, treatment: MeanGroup | tuple, *, confidence: float = 0.95
) -> Lift:
    """Welch's t-test of treatment against control on a per-member measure.

    Each group is ``MeanGroup(n, sum, sum_of_squares)`` or a plain tuple in that order (numbers,
    ``Decimal`` included). The absolute and relative intervals use the t quantile with the
    Welch–Satterthwaite degrees of freedom.
    """
    _check_confidence(confidence)
    control, treatment = _mean_group(control), _mean_group(treatment)
    mean_c = control.sum / control.n if control.n else None
    mean_t = treatment.sum / treatment.n if treatment.n else None
    absolute = mean_t - mean_c if mean_c is not None and mean_t is not None else None
    relative = absolute / mean_c if absolute is not None and mean_c != 0 else None
    result = {
        "absolute": absolute,
        "absolute_ci": None,
        "relative": relative,
        "relative_ci": None,
        "p_value": None,
        "control_mean": mean_c,
        "treatment_mean": mean_t,
        "n_control": control.n,
        "n_treatment": treatment.n,
        "confidence": confidence,
    }
    var_c, var_t = _variance(control), _variance(treatment)
    if var_c is None or var_t is None:
        return Lift(**result)
    var_mean_c, var_mean_t = var_c / control.n, var_t / treatment.n
    se = math.sqrt(var_mean_c + var_mean_t)
    if se == 0.0:
        return Lift(**result)
    df = (var_mean_c + var_mean_t) ** 2 / (
        var_mean_c**2 / (control.n - 1) + var_mean_t**2 / (treatment.n - 1)
    )
    quantile = student_t_ppf(1.0 - (1.0 - confidence) / 2.0, df)
    result["p_value"] = student_t_two_sided_p(absolute / se, df)
    result["absolute_ci"] = _interval(absolute, quantile * se)
    if relative is not None:
        relative_se = _relative_se(mean_c, mean_t, var_mean_c, var_mean_t)
        if relative_se > 0.0:
            result["relative_ci"] = _interval(relative, quantile * relative_se)
    return Lift(**result)


def _proportion_group(group: ProportionGroup | tuple) -> ProportionGroup:
    n, successes = group
    if n < 0 or not 0 <= successes <= n:
        raise ValueError("a group needs 0 ≤ successes ≤ n")
    return ProportionGroup(int(n), int(successes))


def proportion_lift(
    control: ProportionGroup | tuple,
    treatment: ProportionGroup | tuple,
    *,
    confidence: float = 0.95,
) -> Lift:
    """Treatment against control on a yes/no measure (converted, redeemed).

    Each group is ``ProportionGroup(n, successes)`` or a plain ``(n, successes)`` tuple. The
    p-value is the two-proportion z-test's (pooled standard error, two-sided); the intervals
    use the unpooled standard error and the normal quantile.
    """
    _check_confidence(confidence)
    control, treatment = _proportion_group(control), _proportion_group(treatment)
    rate_c = control.successes / control.n if control.n else None
    rate_t = treatment.successes / treatment.n if treatment.n else None
    absolute = rate_t - rate_c if rate_c is not None and rate_t is not None else None
    relative = absolute / rate_c if absolute is not None and rate_c != 0 else None
    result = {
        "absolute": absolute,
        "absolute_ci": None,
        "relative": relative,
        "relative_ci": None,
        "p_value": None,
        "control_mean": rate_c,
        "treatment_mean": rate_t,
        "n_control": control.n,
        "n_treatment": treatment.n,
        "confidence": confidence,
    }
    if control.n < 2 or treatment.n < 2:
        return Lift(**result)
    pooled = (control.successes + treatment.successes) / (control.n + treatment.n)
    pooled_se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / control.n + 1.0 / treatment.n))
    if pooled_se > 0.0:
        result["p_value"] = _normal_two_sided_p(absolute / pooled_se)
    var_mean_c = rate_c * (1.0 - rate_c) / control.n
    var_mean_t = rate_t * (1.0 - rate_t) / treatment.n
    se = math.sqrt(var_mean_c + var_mean_t)
    if se == 0.0:
        return Lift(**result)
    quantile = normal_ppf(1.0 - (1.0 - confidence) / 2.0)
    result["absolute_ci"] = _interval(absolute, quantile * se)
    if relative is not None:
        relative_se = _relative_se(rate_c, rate_t, var_mean_c, var_mean_t)
        if relative_se > 0.0:
            result["relative_ci"] = _interval(relative, quantile * relative_se)
    return Lift(**result)


# --- Sample-ratio mismatch -----------------------------------------------------------------------


def sample_ratio_mismatch(
    observed_control: int,
    observed_treatment: int,
    expected_control_share: float,
    *,
    alpha: float = 0.001,
) -> SampleRatio:
    """Chi-square goodness of fit (1 df) of the observed split against the configured share.

    ``mismatch`` is true when the p-value is below ``alpha``. The default is strict on purpose:
    the check runs on every campaign, and a false alarm sends marketing hunting for a bug.
    """
    share = float(expected_control_share)
    if not 0.0 < share < 1.0:
        raise ValueError("the expected control share must be strictly between 0 and 1")
    if observed_control < 0 or observed_treatment < 0:
        raise ValueError("observed counts cannot be negative")
    total = observed_control + observed_treatment
    if total == 0:
        return SampleRatio(None, None, False, share, None)
    expected_c = total * share
    expected_t = total - expected_c
    chi_square = (observed_control - expected_c) ** 2 / expected_c + (
        observed_treatment - expected_t
    ) ** 2 / expected_t
    p_value = math.erfc(math.sqrt(chi_square / 2.0))
    return SampleRatio(chi_square, p_value, p_value < alpha, share, observed_control / total)
