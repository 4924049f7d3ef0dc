"""Feature attribution for any classifier with ``predict_proba``: global and per signal.

* :func:`permutation_ranking`: permutation importance (Breiman 2001; scikit-learn's
  :func:`sklearn.inspection.permutation_importance`) scored by the log loss of ``P(class 1)``:
  how much worse the forecasts get when one feature's column is shuffled. Model-agnostic and
  expensive (``n_features * n_repeats`` predictions of the whole window).
* :func:`local_attribution`: why *this* forecast. For a linear model with ``coef_`` (for example
  ``LogisticRegression``) the exact log-odds contribution ``coef_j * (x_j - baseline_j)``. For
  anything else a cheap occlusion proxy in probability units: ``p(x) - p(x with x_j := baseline_j)``,
  one extra prediction per feature and row. The baseline is a typical row (the training median).
  Occlusion ignores interactions between features, so contributions need not add up to
  ``p(x) - p(baseline)``.

scikit-learn is imported inside the functions: importing this module stays cheap.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


def positive_column(estimator: Any) -> int:
    """Index of class 1 (or ``True``) in ``estimator.predict_proba`` output (1 when unknown)."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return 1
    hits = [i for i, c in enumerate(np.asarray(classes).tolist()) if c in (1, True)]
    if len(hits) != 1:
        raise ValueError(
            f"The estimator's 'classes_' must contain exactly one positive class (1 or True). Got {classes!r}."
        )
    return hits[0]


def predict_up(estimator: Any, X: pd.DataFrame | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``P(class 1)`` for each row of ``X``."""
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[0] != len(X):
        raise ValueError(
            f"predict_proba must return shape (n_rows, n_classes); got {proba.shape} for {len(X)} rows."
        )
    return proba[:, positive_column(estimator)]


def _log_loss_scorer(estimator: Any, X: Any, y: Any) -> float:
    p = np.clip(predict_up(estimator, X), 1e-15, 1.0 - 1e-15)
    yy = np.asarray(y, dtype=np.float64)
    return float(np.mean(yy * np.log(p) + (1.0 - yy) * np.log(1.0 - p)))  # negative log loss


def permutation_ranking(
    estimator: Any,
    X: pd.DataFrame,
    y: npt.ArrayLike,
    *,
    n_repeats: int = 5,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Permutation importance of every column of ``X``, best first.

    Returns
    -------
    DataFrame
        ``feature``, ``importance_mean``, ``importance_std`` (increase in log loss when the
        feature is shuffled, over ``n_repeats`` shuffles) and ``rank`` (1 = most important).
    """
    from sklearn.inspection import permutation_importance

    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"The 'X' parameter of permutation_ranking must be a DataFrame. Got {type(X).__name__}."
        )
    if not isinstance(n_repeats, int) or n_repeats < 1:
        raise ValueError(
            f"The 'n_repeats' parameter of permutation_ranking must be an int >= 1. Got {n_repeats!r} instead."
        )
    feed: Any = X if _wants_frame(estimator) else X.to_numpy(dtype=np.float64)
    res = permutation_importance(
        estimator,
        feed,
        np.asarray(y),
        scoring=_log_loss_scorer,
        n_repeats=n_repeats,
        random_state=random_state,
    )
    out = pd.DataFrame(
        {
            "feature": list(X.columns),
            "importance_mean": res.importances_mean,
            "importance_std": res.importances_std,
        }
    )
    out = out.sort_values("importance_mean", ascending=False, kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def _wants_frame(estimator: Any) -> bool:
    """True when the estimator was fitted on a DataFrame (so it checks column names)."""
    return getattr(estimator, "feature_names_in_", None) is not None or getattr(
        estimator, "wants_frame", False
    )


def local_attribution(
    estimator: Any, X: pd.DataFrame, baseline: pd.Series | npt.NDArray[np.float64]
) -> tuple[pd.DataFrame, str]:
    """Per-row, per-feature contributions towards ``P(class 1)``.

    Parameters
    ----------
    estimator
        Fitted classifier with ``predict_proba``.
    X
        Rows to explain, one column per feature.
    baseline
        The reference row (length ``n_features``), e.g. the training median.

    Returns
    -------
    (DataFrame, str)
        Contributions shaped like ``X`` and the method: ``"linear_logodds"`` (exact, linear
        models) or ``"occlusion_prob"`` (proxy, probability units).
    """
    if not isinstance(X, pd.DataFrame):
        raise ValueError(
            f"The 'X' parameter of local_attribution must be a DataFrame. Got {type(X).__name__}."
        )
    base = np.asarray(baseline, dtype=np.float64).ravel()
    if base.shape[0] != X.shape[1]:
        raise ValueError(
            f"The 'baseline' parameter of local_attribution must have one value per feature ({X.shape[1]}). "
            f"Got {base.shape[0]} instead."
        )
    x = X.to_numpy(dtype=np.float64)
    coef = getattr(estimator, "coef_", None)
    if coef is not None and np.asarray(coef).shape == (1, X.shape[1]):
        contrib = np.asarray(coef, dtype=np.float64)[0] * (x - base)
        if positive_column(estimator) == 0:
            contrib = -contrib
        return pd.DataFrame(contrib, index=X.index, columns=X.columns), "linear_logodds"
    n, f = x.shape
    p0 = predict_up(estimator, X if _wants_frame(estimator) else x)
    stacked = np.repeat(x[None, :, :], f, axis=0)  # (f, n, f): block j has feature j occluded
    for j in range(f):
        stacked[j, :, j] = base[j]
    flat = stacked.reshape(f * n, f)
    feed: Any = pd.DataFrame(flat, columns=X.columns) if _wants_frame(estimator) else flat
    p_occ = predict_up(estimator, feed).reshape(f, n).T
    return pd.DataFrame(p0[:, None] - p_occ, index=X.index, columns=X.columns), "occlusion_prob"


def top_contributions(
    contrib: pd.DataFrame, *, k: int = 3, sign: npt.ArrayLike | None = None
) -> list[list[dict[str, Any]]]:
    """The ``k`` largest contributions by magnitude per row as ``[{"feature", "contribution"}]``.

    ``sign`` (+1/-1 per row) re-expresses contributions as support for the predicted action
    (positive = pushes towards the action taken).
    """
    vals = contrib.to_numpy(dtype=np.float64)
    if sign is not None:
        vals = vals * np.asarray(sign, dtype=np.float64)[:, None]
    names = list(contrib.columns)
    order = np.argsort(-np.abs(np.nan_to_num(vals)), axis=1, kind="stable")[:, :k]
    return [
        [{"feature": names[j], "contribution": float(vals[i, j])} for j in order[i]]
        for i in range(vals.shape[0])
    ]
