"""Multivariate drift by PCA reconstruction error, and which features and pairs carry a rise in it.

NannyML's data reconstruction drift: on the reference, impute each numeric feature's missing values with its
mean, standardise (population σ), and keep the principal components that explain a share of the variance
(65% by default). A row's reconstruction error is the Euclidean distance between its standardised values and
their projection back from those components; a chunk's value is the mean over its rows. When the joint
distribution changes (a correlation breaks, features move together) rows leave the reference's subspace and
the error rises, even when every marginal looks the same. Reference: NannyML, "Data Reconstruction with PCA"
(docs.nannyml.com, how it works); scikit-learn's ``SimpleImputer`` → ``StandardScaler`` → ``PCA(0.65)``.

The explanation is exact: with centred standardised rows ``z`` and ``M = I − WᵀW`` (``W``: the kept
components), the squared error is ``zᵀMz``, so its mean over a window is ``Σᵢⱼ Mᵢⱼ·E[zᵢzⱼ]`` and its change
between two windows splits into one term per feature (``Mᵢᵢ·ΔE[zᵢ²]``) and one per pair
(``2·Mᵢⱼ·ΔE[zᵢzⱼ]``). The second moments come from sums and cross-product sums (:class:`SecondMoments`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.core.errors import InputError

VARIANCE_SHARE = 0.65  # NannyML's default share of the variance the kept components explain


@dataclass(frozen=True)
class ReconstructionModel:
    """A fitted reconstruction: per feature the imputed mean and σ, the PCA centre and the kept components.

    ``means``, ``scales``: in the features' units; ``center`` and ``components`` (k × d, orthonormal rows):
    in standardised units; ``explained``: each kept component's share of the variance.
    """

    features: tuple[str, ...]
    means: np.ndarray
    scales: np.ndarray
    center: np.ndarray
    components: np.ndarray
    explained: np.ndarray
    n_rows: int

    @property
    def n_components(self) -> int:
        """How many principal components are kept."""
        return int(self.components.shape[0])

    @property
    def residual_matrix(self) -> np.ndarray:
        """``M = I − WᵀW``: the projection onto what the kept components miss (symmetric, idempotent)."""
        return np.eye(len(self.features)) - self.components.T @ self.components

    def centred(self, values: np.ndarray) -> np.ndarray:
        """Rows (n × d, NaN = missing) imputed with the means, standardised, and centred on the PCA's centre."""
        x = np.asarray(values, dtype=float)
        x = np.where(np.isnan(x), self.means, x)
        return (x - self.means) / self.scales - self.center

    def errors(self, values: np.ndarray) -> np.ndarray:
        """Each row's reconstruction error: ‖z − ẑ‖₂ in standardised units (ẑ: z projected on the components)."""
        z = self.centred(values)
        residual = z - (z @ self.components.T) @ self.components
        return np.sqrt((residual**2).sum(axis=1))


def fit_reconstruction(
    values: np.ndarray, features: list[str] | tuple[str, ...], variance_share: float = VARIANCE_SHARE
) -> ReconstructionModel:
    """Fit the imputation, the scaling and the PCA on the reference rows (n × d, NaN = missing).

    Keeps the fewest components whose cumulative explained variance exceeds ``variance_share``, as
    scikit-learn's ``PCA(n_components=variance_share)`` does. A constant or all-missing column is an
    :class:`InputError` (it has no direction to learn; the caller leaves it out and says so).
    """
    x = np.asarray(values, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(features):
        raise InputError(f"expected rows of {len(features)} features, got shape {x.shape}")
    if x.shape[0] < 2:
        raise InputError("a reconstruction needs at least 2 reference rows")
    if not 0 < variance_share < 1:
        raise InputError(f"the variance share must be between 0 and 1, not {variance_share}")
    present = ~np.isnan(x)
    counts = present.sum(axis=0)
    if (counts == 0).any():
        raise InputError(f"'{features[int(np.argmin(counts))]}' has no values in the reference sample")
    means = np.where(present, x, 0.0).sum(axis=0) / counts
    imputed = np.where(present, x, means)
    scales = imputed.std(axis=0)
    if (scales == 0).any():
        raise InputError(f"'{features[int(np.argmin(scales))]}' is constant in the reference sample")
    z = (imputed - means) / scales
    center = z.mean(axis=0)
    _, singular, vt = np.linalg.svd(z - center, full_matrices=False)
    ratio = singular**2 / (singular**2).sum()
    k = min(int(np.searchsorted(np.cumsum(ratio), variance_share, side="right")) + 1, len(features))
    return ReconstructionModel(tuple(features), means, scales, center, vt[:k], ratio[:k], int(x.shape[0]))


@dataclass(frozen=True)
class SecondMoments:
    """Sufficient statistics of a window's centred standardised rows: n, Σzᵢ and Σzᵢzⱼ (d × d)."""

    n: int
    sums: np.ndarray
    products: np.ndarray

    @classmethod
    def of(cls, z: np.ndarray) -> SecondMoments:
        """The moments of rows ``z`` (n × d) already imputed, standardised and centred."""
        z = np.asarray(z, dtype=float)
        return cls(len(z), z.sum(axis=0), z.T @ z)

    @property
    def means(self) -> np.ndarray:
        """E[zᵢ]: each feature's mean in reference σ from the reference's centre."""
        return self.sums / self.n

    @property
    def second(self) -> np.ndarray:
        """E[zᵢzⱼ]."""
        return self.products / self.n

    def correlation(self) -> np.ndarray:
        """Pearson correlation of each pair (NaN where a feature does not vary in the window)."""
        cov = self.second - np.outer(self.means, self.means)
        sd = np.sqrt(np.clip(np.diag(cov), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            return cov / np.outer(sd, sd)


def mean_squared_error(model: ReconstructionModel, moments: SecondMoments) -> float:
    """E‖z − ẑ‖² over a window, from its moments alone: Σᵢⱼ Mᵢⱼ·E[zᵢzⱼ]."""
    return float((model.residual_matrix * moments.second).sum())


def contributions(
    model: ReconstructionModel, reference: SecondMoments, current: SecondMoments
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(features, pairs): each one's part of the change in mean squared reconstruction error, largest first.

    Feature i: ``Mᵢᵢ·ΔE[zᵢ²]``, with its mean shift (in reference σ) and the ratio of its standard deviations
    (current / reference); pair (i, j): ``2·Mᵢⱼ·ΔE[zᵢzⱼ]``, with its correlation in both windows. The parts add
    up to the change exactly (see the module's docstring); a negative part lowered the error.
    """
    m = model.residual_matrix
    delta = m * (current.second - reference.second)
    corr_ref, corr_cur = reference.correlation(), current.correlation()
    shift = current.means - reference.means
    variance = lambda w: np.diag(w.second) - w.means**2  # noqa: E731
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sqrt(np.clip(variance(current), 0, None) / variance(reference))
    names = model.features
    features = [
        {
            "feature": names[i],
            "contribution": float(delta[i, i]),
            "mean_shift": float(shift[i]),
            "spread_ratio": _finite(spread[i]),
        }
        for i in range(len(names))
    ]
    pairs = [
        {
            "features": [names[i], names[j]],
            "contribution": float(2 * delta[i, j]),
            "correlation_reference": _finite(corr_ref[i, j]),
            "correlation_current": _finite(corr_cur[i, j]),
        }
        for i, j in itertools.combinations(range(len(names)), 2)
    ]
    by_size = lambda r: -r["contribution"]  # noqa: E731
    return sorted(features, key=by_size), sorted(pairs, key=by_size)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
