"""CUPED: variance reduction with a pre-period covariate, for mean metrics and (linearised) ratio metrics.

Deng, Xu, Kohavi & Walker (2013), "Improving the sensitivity of online controlled experiments by utilizing
pre-experiment data"; for ratios, Deng, Knoblich & Lu (2018). θ is pooled across arms, as GrowthBook does,
so the adjustment is the same for every arm and the estimate stays unbiased under randomisation.
"""

from __future__ import annotations

import math
from dataclasses import replace

from workbench.stats import dist
from workbench.stats.abtest import Effect, Moments, compare_means, compare_ratios, relative_lift


def cuped_theta(control: Moments, variant: Moments) -> float:
    """θ = cov(y, x)/var(x) over both arms pooled (variable 0: metric y, 1: pre-period covariate x)."""
    joint = control + variant
    return joint.comoment[0][1] / joint.comoment[1][1] if joint.comoment[1][1] > 0 else 0.0


def compare_cuped(control: Moments, variant: Moments) -> Effect:
    """Welch's t-test on y − θ·x (CUPED, Deng et al. 2013) with θ pooled across arms; reports the variance cut.

    Per arm var(y − θx) = s_y² − 2θ·s_xy + θ²·s_x²; the result equals ``ttest_ind(y_b − θx_b, y_a − θx_a,
    equal_var=False)``. Means are reported on the metric's scale: ȳ − θ(x̄_arm − x̄_both).
    ``extra['variance_reduction']`` = 1 − Var(Δ̂_cuped)/Var(Δ̂_unadjusted).
    """
    theta = cuped_theta(control, variant)
    joint_x = (control + variant).mean[1] if control.n + variant.n else 0.0
    adjusted = [_adjust(m, theta, joint_x) for m in (control, variant)]
    effect = compare_means(*adjusted)
    plain = compare_means(control, variant)
    reduction = 1 - effect.se**2 / plain.se**2 if effect.defined and plain.defined else math.nan
    extra = {"theta": theta, "variance_reduction": reduction, "unadjusted_diff": plain.diff, "unadjusted_se": plain.se}
    return replace(effect, kind="cuped", test="cuped welch t", extra=extra)


def _adjust(m: Moments, theta: float, joint_x: float) -> Moments:
    """Moments of y − θ(x − x̄_both) (one variable) from the bivariate moments of (y, x)."""
    c = m.comoment
    comoment = c[0][0] - 2 * theta * c[0][1] + theta * theta * c[1][1]
    return Moments(m.n, (m.mean[0] - theta * (m.mean[1] - joint_x),), ((max(comoment, 0.0),),))


def compare_cuped_ratios(control: Moments, variant: Moments) -> Effect:
    """CUPED for a ratio metric Σy/Σn per unit (variables y, n and the covariate z) through its linearisation.

    ℓ_u = (y_u − R·n_u)/n̄ has Var(R̂) = var(ℓ)/N (delta method); θ = Σ_arms C(ℓ, z)/C(z, z) over both arms,
    R_adj = R − θ(z̄_arm − z̄_both) and Var(R_adj) = (var ℓ − 2θ·cov(ℓ, z) + θ²·var z)/N per arm
    (Deng, Knoblich & Lu 2018, "Applying the delta method in metric analytics", CUPED section). z-test.
    """
    plain = compare_ratios(Moments(control.n, control.mean[:2], _sub(control.comoment)),
                           Moments(variant.n, variant.mean[:2], _sub(variant.comoment)))  # fmt: skip
    if not plain.defined:
        return replace(plain, kind="cuped", test="cuped delta z")
    arms = (control, variant)
    lin = [_linearised(m) for m in arms]  # (var ℓ, cov(ℓ, z)) within each arm
    joint = control + variant
    m2_z = joint.comoment[2][2]
    theta = sum((m.n - 1) * cov for m, (_, cov) in zip(arms, lin, strict=True)) / m2_z if m2_z > 0 else 0.0
    va, vb = (
        (var_l - 2 * theta * cov + theta**2 * m.variance(2)) / m.n for m, (var_l, cov) in zip(arms, lin, strict=True)
    )
    va, vb = max(va, 0.0), max(vb, 0.0)
    ma = plain.control_mean - theta * (control.mean[2] - joint.mean[2])
    mb = plain.variant_mean - theta * (variant.mean[2] - joint.mean[2])
    se = math.sqrt(va + vb)
    if se == 0:
        return replace(plain, kind="cuped", test="cuped delta z", message="no variance left after CUPED")
    z = (mb - ma) / se
    rel, rel_se, message = relative_lift(ma, mb, va, vb, "control ratio is 0")
    extra = {"theta": theta, "variance_reduction": 1 - se**2 / plain.se**2, "unadjusted_diff": plain.diff,
             "unadjusted_se": plain.se}  # fmt: skip
    return Effect("cuped", "cuped delta z", control.n, variant.n, ma, mb, mb - ma, se, z,
                  2 * dist.norm_sf(abs(z)), None, rel, rel_se, message=message, extra=extra)  # fmt: skip


def _sub(comoment: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    return tuple(row[:2] for row in comoment[:2])


def _linearised(m: Moments) -> tuple[float, float]:
    """(var ℓ, cov(ℓ, z)) of ℓ = (y − R·n)/n̄ within one arm, from the moments of (y, n, z)."""
    r, nbar = m.mean[0] / m.mean[1], m.mean[1]
    var_l = (m.variance(0) - 2 * r * m.covariance(0, 1) + r * r * m.variance(1)) / nbar**2
    cov_lz = (m.covariance(0, 2) - r * m.covariance(1, 2)) / nbar
    return var_l, cov_lz
