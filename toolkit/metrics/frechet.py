"""The Fréchet distance between two Gaussians fitted to feature sets (the distance behind FID, FID-VID, FVD).

    d² = |mu1 - mu2|² + tr(S1) + tr(S2) - 2 tr((S1^½ S2 S1^½)^½)

The trace term is computed from eigen-decompositions: S1^½ from ``eigh(S1)`` with negative round-off
eigenvalues set to zero, then the eigenvalues of the symmetric PSD matrix S1^½ S2 S1^½, clipped at
zero, whose square roots sum to tr(sqrt(S1 S2)) (S1 S2 and S1^½ S2 S1^½ share their eigenvalues).
Unlike ``scipy.linalg.sqrtm(S1 @ S2)`` (pytorch-fid, DisCo), this stays real and finite for singular
covariances, e.g. fewer samples than feature dimensions, without an epsilon offset; for well-conditioned
inputs both agree to round-off. All arithmetic is float64; a result below zero can only be round-off
and is returned as 0.

From raw features with few samples (n1*n2 <= D*D, the usual case for FVD and FID-VID), the same value is
computed exactly in sample space: with centred, scaled feature matrices A_i = (F_i - mu_i)/sqrt(n_i-1),
S_i = A_i^T A_i, so tr(S_i) = |A_i|_F^2 and tr(sqrt(S1 S2)) is the sum of the singular values of A1 A2^T
(the nonzero eigenvalues of S1 S2 are those of A1 S2 A1^T = (A1 A2^T)(A1 A2^T)^T).
"""

from __future__ import annotations

import numpy as np


def _check_features(features: np.ndarray) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"features must be a 2-D array (samples, dims), got shape {features.shape}")
    if features.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {features.shape[0]}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinite values")
    return features


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (ddof=1, as numpy's ``np.cov``) of (N, D) features, N >= 2."""
    features = _check_features(features)
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative round-off eigenvalues dropped)."""
    eigenvalues, eigenvectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))) @ eigenvectors.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr(sqrt(sigma1 @ sigma2)) for symmetric PSD matrices, via eigen-decompositions."""
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    eigenvalues = np.linalg.eigvalsh((middle + middle.T) / 2.0)
    return float(np.sqrt(np.clip(eigenvalues, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.shape != mu2.shape or mu1.ndim != 1:
        raise ValueError(f"means must be vectors of one length, got {mu1.shape} and {mu2.shape}")
    dim = mu1.shape[0]
    if sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(f"covariances must be {dim}x{dim}, got {sigma1.shape} and {sigma2.shape}")
    for name, array in (("mu1", mu1), ("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_sqrt_product(sigma1, sigma2))
    return max(value, 0.0)


def frechet_distance_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets (unbiased covariances)."""
    features1, features2 = _check_features(features1), _check_features(features2)
    (n1, dim), (n2, dim2) = features1.shape, features2.shape
    if dim != dim2:
        raise ValueError(f"feature sets have different dimensions: {dim} and {dim2}")
    if n1 * n2 > dim * dim:
        return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    mu1, mu2 = features1.mean(axis=0), features2.mean(axis=0)
    a1 = (features1 - mu1) / np.sqrt(n1 - 1)
    a2 = (features2 - mu2) / np.sqrt(n2 - 1)
    trace_sqrt = float(np.linalg.svd(a1 @ a2.T, compute_uv=False).sum())
    diff = mu1 - mu2
    value = float(diff @ diff + np.sum(a1 * a1) + np.sum(a2 * a2) - 2.0 * trace_sqrt)
    return max(value, 0.0)
