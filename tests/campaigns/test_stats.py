"""campaigns/stats.py against scipy (here only), published examples and degenerate cases."""

import math
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats as scipy_stats

from campaigns import stats
from campaigns.stats import (
    Lift,
    MeanGroup,
    ProportionGroup,
    mean_lift,
    proportion_lift,
    sample_ratio_mismatch,
)

REL = 1e-6


def _summary(values) -> MeanGroup:
    values = np.asarray(values, dtype=float)
    return MeanGroup(len(values), float(values.sum()), float((values * values).sum()))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# (control, treatment): small and large n, negative lift, unequal variances and sizes.
MEAN_EXAMPLES = {
    "small": ([12.0, 15.5, 9.0, 11.0, 14.0], [16.0, 13.5, 18.0, 15.0, 17.5, 12.0]),
    "negative_lift": (
        _rng(1).normal(50.0, 12.0, 40).tolist(),
        _rng(2).normal(44.0, 12.0, 35).tolist(),
    ),
    "unequal_variances": (
        _rng(3).normal(20.0, 2.0, 30).tolist(),
        _rng(4).normal(23.0, 15.0, 300).tolist(),
    ),
    # Revenue per member is skewed: many small baskets, a few large ones.
    "large_skewed": (
        _rng(5).lognormal(3.0, 1.0, 200_000).tolist(),
        _rng(6).lognormal(3.01, 1.0, 180_000).tolist(),
    ),
}


@pytest.mark.parametrize("name", sorted(MEAN_EXAMPLES))
def test_mean_lift_matches_scipy_welch(name):
    control, treatment = (np.asarray(group) for group in MEAN_EXAMPLES[name])
    lift = mean_lift(_summary(control), _summary(treatment))

    expected = scipy_stats.ttest_ind(treatment, control, equal_var=False)
    low, high = expected.confidence_interval(0.95)
    assert lift.p_value == pytest.approx(expected.pvalue, rel=REL)
    assert lift.absolute == pytest.approx(treatment.mean() - control.mean(), rel=REL)
    assert lift.absolute_ci[0] == pytest.approx(low, rel=REL)
    assert lift.absolute_ci[1] == pytest.approx(high, rel=REL)
    assert lift.control_mean == pytest.approx(control.mean(), rel=REL)
    assert lift.treatment_mean == pytest.approx(treatment.mean(), rel=REL)
    assert (lift.n_control, lift.n_treatment) == (len(control), len(treatment))

    # Delta method for treatment/control − 1, with the same Welch df as the test.
    var_c = control.var(ddof=1) / len(control)
    var_t = treatment.var(ddof=1) / len(treatment)
    mean_c, mean_t = control.mean(), treatment.mean()
    relative_se = math.sqrt(var_t / mean_c**2 + mean_t**2 * var_c / mean_c**4)
    half = scipy_stats.t.ppf(0.975, expected.df) * relative_se
    relative = mean_t / mean_c - 1
    assert lift.relative == pytest.approx(relative, rel=REL)
    assert lift.relative_ci[0] == pytest.approx(relative - half, rel=REL)
    assert lift.relative_ci[1] == pytest.approx(relative + half, rel=REL)


def test_negative_lift_has_a_negative_interval_around_it():
    control, treatment = MEAN_EXAMPLES["negative_lift"]
    lift = mean_lift(_summary(control), _summary(treatment))
    assert lift.absolute < 0 and lift.relative < 0
    assert lift.absolute_ci[0] < lift.absolute < lift.absolute_ci[1]
    assert lift.relative_ci[0] < lift.relative < lift.relative_ci[1]


def test_a_wider_confidence_gives_a_wider_interval_matching_scipy():
    control, treatment = (np.asarray(group) for group in MEAN_EXAMPLES["unequal_variances"])
    lift = mean_lift(_summary(control), _summary(treatment), confidence=0.99)
    low, high = scipy_stats.ttest_ind(treatment, control, equal_var=False).confidence_interval(0.99)
    assert lift.absolute_ci == (pytest.approx(low, rel=REL), pytest.approx(high, rel=REL))
    narrower = mean_lift(_summary(control), _summary(treatment), confidence=0.9)
    assert narrower.absolute_ci[0] > lift.absolute_ci[0]
    assert lift.confidence == 0.99


def test_welch_published_example_worked_by_hand():
    # Published: senseofstudy.com, "Two-Sample Tests Math Example 4" — group 1: n = 20, mean 100,
    # s = 15; group 2: n = 20, mean 95, s = 20; answer SE ≈ 5.59, t ≈ 0.895, df ≈ 35.2.
    # By hand: SE = √(225/20 + 400/20) = √31.25 = 5.5902; t = 5 / 5.5902 = 0.8944;
    # df = 31.25² / ((11.25² + 20²) / 19) = 976.5625 / 27.7138 = 35.24.
    # NIST/SEMATECH e-Handbook §1.3.6.7.2 (critical values of t): t(0.975; 35.24) lies between
    # 2.042 (30 df) and 2.021 (40 df), about 2.030, so the 95 % interval is
    # 5 ± 2.030 × 5.5902 = 5 ± 11.35 = (−6.35, 16.35).
    def group(n, mean, sd):
        return (n, n * mean, (n - 1) * sd**2 + n * mean**2)

    lift = mean_lift(group(20, 95, 20), group(20, 100, 15))
    assert lift.absolute == pytest.approx(5.0)
    half_width = (lift.absolute_ci[1] - lift.absolute_ci[0]) / 2
    assert half_width / stats.student_t_ppf(0.975, 35.24) == pytest.approx(5.59, abs=0.005)
    assert lift.absolute_ci[0] == pytest.approx(-6.35, abs=0.01)
    assert lift.absolute_ci[1] == pytest.approx(16.35, abs=0.01)
    assert lift.p_value == pytest.approx(2 * scipy_stats.t.sf(0.8944, 35.24), rel=1e-3)
    assert lift.p_value > 0.05


def test_quantiles_against_published_tables_and_scipy():
    # NIST/SEMATECH e-Handbook §1.3.6.7.2: upper critical values of Student's t.
    assert stats.student_t_ppf(0.975, 1) == pytest.approx(12.706, abs=5e-4)
    assert stats.student_t_ppf(0.975, 10) == pytest.approx(2.228, abs=5e-4)
    assert stats.student_t_ppf(0.995, 30) == pytest.approx(2.750, abs=5e-4)
    assert stats.student_t_ppf(0.975, 100) == pytest.approx(1.984, abs=5e-4)
    for df in (1, 2.5, 7, 29.3, 1_000, 250_000):
        for p in (0.001, 0.025, 0.3, 0.9, 0.975, 0.9995):
            assert stats.student_t_ppf(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=REL)
    for p in (1e-12, 0.001, 0.02425, 0.3, 0.5, 0.8, 0.975, 1 - 1e-9):
        assert stats.normal_ppf(p) == pytest.approx(scipy_stats.norm.ppf(p), rel=REL, abs=1e-12)
    for t in (0.0, 0.5, 2.0, 8.0, 40.0):
        for df in (1, 3.7, 60, 10_000):
            expected = 2 * scipy_stats.t.sf(t, df)
            assert stats.student_t_two_sided_p(t, df) == pytest.approx(expected, rel=REL)


# (control, treatment) as (n, successes)
PROPORTION_EXAMPLES = {
    "small": ((40, 6), (38, 12)),
    "large": ((250_000, 12_500), (240_000, 12_720)),
    "negative": ((5_000, 900), (5_200, 810)),
    "unequal_sizes": ((1_000, 100), (9_000, 1_080)),
}


@pytest.mark.parametrize("name", sorted(PROPORTION_EXAMPLES))
def test_proportion_lift_matches_scipy(name):
    (n_c, s_c), (n_t, s_t) = PROPORTION_EXAMPLES[name]
    lift = proportion_lift(ProportionGroup(n_c, s_c), (n_t, s_t))

    # The pooled two-proportion z-test is the 2×2 chi-square test without continuity correction.
    table = [[s_c, n_c - s_c], [s_t, n_t - s_t]]
    chi2 = scipy_stats.chi2_contingency(table, correction=False)
    assert lift.p_value == pytest.approx(chi2.pvalue, rel=REL)
    pooled = (s_c + s_t) / (n_c + n_t)
    z = (s_t / n_t - s_c / n_c) / math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    assert lift.p_value == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=REL)

    p_c, p_t = s_c / n_c, s_t / n_t
    var_c, var_t = p_c * (1 - p_c) / n_c, p_t * (1 - p_t) / n_t
    quantile = scipy_stats.norm.ppf(0.975)
    half = quantile * math.sqrt(var_c + var_t)
    assert lift.absolute == pytest.approx(p_t - p_c, rel=REL)
    assert lift.absolute_ci[0] == pytest.approx(p_t - p_c - half, rel=REL)
    assert lift.absolute_ci[1] == pytest.approx(p_t - p_c + half, rel=REL)
    relative_half = quantile * math.sqrt(var_t / p_c**2 + p_t**2 * var_c / p_c**4)
    assert lift.relative == pytest.approx(p_t / p_c - 1, rel=REL)
    assert lift.relative_ci[0] == pytest.approx(p_t / p_c - 1 - relative_half, rel=REL)
    assert lift.relative_ci[1] == pytest.approx(p_t / p_c - 1 + relative_half, rel=REL)


def test_proportion_worked_by_hand():
    # 100 of 1,000 control members converted, 130 of 1,000 treated members. By hand:
    # pooled p = 230/2000 = 0.115; SE0 = √(0.115 × 0.885 × (2/1000)) = 0.014267;
    # z = 0.03 / 0.014267 = 2.1028; two-sided p = 2 × (1 − Φ(2.1028)) = 0.0355.
    # Unpooled SE = √(0.1 × 0.9/1000 + 0.13 × 0.87/1000) = 0.014260, so the 95 % interval is
    # 0.03 ± 1.96 × 0.014260 = (0.00205, 0.05795).
    lift = proportion_lift((1000, 100), (1000, 130))
    assert lift.p_value == pytest.approx(0.0355, abs=5e-5)
    assert lift.absolute_ci[0] == pytest.approx(0.00205, abs=2e-5)
    assert lift.absolute_ci[1] == pytest.approx(0.05795, abs=2e-5)
    assert lift.relative == pytest.approx(0.3)


@pytest.mark.parametrize(
    "control, treatment",
    [
        ((0, 0, 0), (10, 100, 1_100)),
        ((1, 5, 25), (10, 100, 1_100)),
        ((10, 100, 1_100), (1, 5, 25)),
    ],
)
def test_mean_lift_with_fewer_than_two_members_has_no_interval(control, treatment):
    lift = mean_lift(control, treatment)
    assert lift.p_value is None
    assert lift.absolute_ci is None and lift.relative_ci is None
    if control[0]:
        expected = treatment[1] / treatment[0] - control[1] / control[0]
        assert lift.absolute == pytest.approx(expected)
    else:
        assert lift.absolute is None and lift.relative is None and lift.control_mean is None


def test_mean_lift_without_any_variance_gives_the_lift_but_no_test():
    # Ten members who each bought 0.1 — float sums leave a cancellation residue, not variance.
    lift = mean_lift((10, 0.1 * 10, 0.01 * 10), (3, 6.0, 12.0))
    assert lift.absolute == pytest.approx(1.9)
    assert lift.relative == pytest.approx(19.0)
    assert lift.p_value is None and lift.absolute_ci is None and lift.relative_ci is None


def test_mean_lift_with_one_group_constant_still_tests():
    lift = mean_lift((5, 50, 500), (5, 60, 740))  # control all 10; treatment varies
    assert lift.p_value is not None and lift.absolute_ci is not None


def test_zero_control_mean_has_no_relative_lift():
    lift = mean_lift((5, 0, 0), (5, 10, 30))
    assert lift.control_mean == 0
    assert lift.absolute == 2
    assert lift.p_value is not None and lift.absolute_ci is not None
    assert lift.relative is None and lift.relative_ci is None

    lift = proportion_lift((500, 0), (500, 10))
    assert lift.relative is None and lift.relative_ci is None
    assert lift.p_value is not None and lift.absolute_ci is not None


def test_proportion_degenerate_cases():
    nobody = proportion_lift((500, 0), (500, 0))
    assert nobody.absolute == 0
    assert nobody.p_value is None and nobody.absolute_ci is None and nobody.relative is None
    everybody = proportion_lift((500, 500), (400, 400))
    assert everybody.relative == 0
    assert everybody.p_value is None and everybody.absolute_ci is None
    tiny = proportion_lift((1, 1), (40, 10))
    assert tiny.absolute == pytest.approx(-0.75)
    assert tiny.p_value is None and tiny.absolute_ci is None
    empty = proportion_lift((0, 0), (40, 10))
    assert empty.absolute is None and empty.control_mean is None and empty.treatment_mean == 0.25


def test_no_result_is_ever_nan():
    cases = [
        mean_lift((0, 0, 0), (0, 0, 0)),
        mean_lift((2, 0, 0), (2, 0, 0)),
        mean_lift((3, 3, 3), (3, 3, 3)),
        proportion_lift((0, 0), (0, 0)),
        proportion_lift((2, 1), (2, 1)),
    ]
    for lift in cases:
        for value in (lift.absolute, lift.relative, lift.p_value, lift.control_mean):
            assert value is None or not math.isnan(value)
        for pair in (lift.absolute_ci, lift.relative_ci):
            assert pair is None or not any(math.isnan(v) for v in pair)
    # Identical groups with spread: no lift, p = 1.
    same = mean_lift((3, 6, 14), (3, 6, 14))
    assert same.absolute == 0 and same.p_value == pytest.approx(1.0)


def test_groups_may_be_plain_tuples_of_decimals_and_the_result_is_frozen():
    lift = mean_lift(
        (4, Decimal("40.00"), Decimal("404.00")), MeanGroup(4, Decimal("48.00"), Decimal("580"))
    )
    assert isinstance(lift, Lift)
    assert lift.absolute == pytest.approx(2.0)
    with pytest.raises(AttributeError):
        lift.absolute = 0


@pytest.mark.parametrize(
    "call",
    [
        lambda: mean_lift((5, 1, 1), (5, 1, 1), confidence=1.0),
        lambda: mean_lift((-1, 1, 1), (5, 1, 1)),
        lambda: proportion_lift((5, 6), (5, 1)),
        lambda: sample_ratio_mismatch(10, 10, 1.0),
        lambda: sample_ratio_mismatch(-1, 10, 0.5),
    ],
)
def test_impossible_inputs_are_refused(call):
    # Not degenerate data but a caller's bug: more successes than members, a share of 100 %.
    with pytest.raises(ValueError):
        call()


def test_sample_ratio_mismatch_detected_on_a_5000_5400_split():
    result = sample_ratio_mismatch(5_000, 5_400, 0.5)
    expected = scipy_stats.chisquare([5_000, 5_400], f_exp=[5_200, 5_200])
    assert result.chi_square == pytest.approx(expected.statistic, rel=REL)
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL)
    # By hand: (200² + 200²) / 5200 = 15.38 > 10.828, the χ²(1) critical value at 0.001
    # (NIST/SEMATECH e-Handbook §1.3.6.7.4).
    assert result.chi_square == pytest.approx(15.3846, abs=1e-4)
    assert result.mismatch is True


def test_sample_ratio_mismatch_not_raised_on_a_5000_5050_split():
    result = sample_ratio_mismatch(5_000, 5_050, 0.5)
    expected = scipy_stats.chisquare([5_000, 5_050], f_exp=[5_025, 5_025])
    assert result.p_value == pytest.approx(expected.pvalue, rel=REL)
    assert result.mismatch is False
    assert result.observed_control_share == pytest.approx(5_000 / 10_050)


def test_sample_ratio_mismatch_with_an_uneven_configured_split():
    # A 10 % control group: 1,000 of 10,000 is right, 1,150 is not.
    fine = sample_ratio_mismatch(1_000, 9_000, 0.1)
    assert fine.chi_square == 0 and fine.p_value == pytest.approx(1.0) and not fine.mismatch
    off = sample_ratio_mismatch(1_150, 8_850, 0.1)
    expected = scipy_stats.chisquare([1_150, 8_850], f_exp=[1_000, 9_000])
    assert off.p_value == pytest.approx(expected.pvalue, rel=REL)
    assert off.mismatch
    assert sample_ratio_mismatch(1_150, 8_850, 0.1, alpha=1e-30).mismatch is False


def test_sample_ratio_mismatch_without_members():
    result = sample_ratio_mismatch(0, 0, 0.5)
    assert result.chi_square is None and result.p_value is None and result.mismatch is False
