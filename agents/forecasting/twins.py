"""Covariate twins: covariate-aware copies of a forecaster's candidates and the per-SKU covariate statistics.

A twin (``name + "+cov"``, :class:`~agents.forecasting.covariates.Lifted`) forecasts its
source's base demand times the lift ``exp(w . x)`` of the period's covariates; the per-SKU
coefficient ``w`` is partially pooled towards the partition's shared ``w_0``
(:mod:`agents.forecasting.covariates`). Learning a period with covariates is the selector's
one :meth:`~agents.forecasting.selection.DemandForecaster.learn_one` with the features of
:meth:`CovariateTwins.lifted_features`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.forecasting.base import OnlineForecaster
from agents.forecasting.covariates import COVARIATES, CovariateEffects, Lifted
from agents.forecasting.registry import COVARIATE_TWINS, TWIN_SUFFIX

__all__ = ["CovariateTwins"]


class CovariateTwins:
    """Enabling covariates (the twins), the pooled coefficient, the lift of a period's features.

    A part of :class:`~agents.forecasting.selection.DemandForecaster` (which initialises the
    attributes below).
    """

    _names: list[str]
    _models: list[OnlineForecaster]
    _served: int
    _mae: list[float]
    _sq: list[float]
    _fc: list[float]
    _cov: CovariateEffects | None  # covariate statistics, once enabled
    _twin_sources: list[int]  # candidate index each covariate twin was cloned from

    def enable_covariates(
        self, names: Sequence[str] = COVARIATES, twins: Sequence[int] | None = None
    ) -> bool:
        """Add covariate-aware twins of the candidates (idempotent); True when newly enabled.

        Every candidate named in :data:`COVARIATE_TWINS` gets a twin ``name + "+cov"``
        (:class:`~agents.forecasting.covariates.Lifted`) cloned *with its learned state* and its
        error statistics, so the twin has the same history and, until the first period with
        non-zero covariates, forecasts exactly like its source. The twin of the served candidate
        is served from now on (the first twin when the served one has none); it keeps serving
        only while its decayed MAE stays within ``switch_margin`` of the best, like any
        candidate. The per-SKU covariate statistics start empty (the pooled coefficient).

        Parameters
        ----------
        names
            Covariate feature names (default :data:`~agents.forecasting.covariates.COVARIATES`).
        twins
            Candidate indices to twin (default: those named in :data:`COVARIATE_TWINS`); used
            by the decoder.

        Returns
        -------
        bool
            False when covariates were already enabled (nothing changes).

        Raises
        ------
        ValueError
            When covariates are enabled with other names, or no candidate can be twinned.

        Examples
        --------
        >>> from agents.forecasting.selection import DemandForecaster
        >>> f = DemandForecaster()
        >>> for y in [5, 0, 3, 4]:
        ...     f.learn_one(y)
        >>> before = f.forecast(3)
        >>> f.enable_covariates(), f.served_model, f.forecast(3) == before
        (True, 'seasonal_sba+cov', True)

        """
        names = tuple(names)
        if self._cov is not None:
            if names != self._cov.names:
                raise ValueError(
                    f"covariates are enabled with {self._cov.names}; cannot re-enable with {names}."
                )
            return False
        if twins is None:
            twins = [i for i, n in enumerate(self._names) if n in COVARIATE_TWINS]
        twins = [int(i) for i in twins]
        if not twins or any(not 0 <= i < len(self._names) for i in twins):
            raise ValueError(f"no candidate to give a covariate twin among {self._names}.")
        for i in twins:
            src = self._models[i]
            twin = src.clone()
            twin.load_state(src.state())
            self._names.append(self._names[i] + TWIN_SUFFIX)
            self._models.append(Lifted(twin))
            self._mae.append(self._mae[i])
            self._sq.append(self._sq[i])
            self._fc.append(self._fc[i])
        k0 = len(self._names) - len(twins)
        self._twin_sources = twins
        self._served = k0 + twins.index(self._served) if self._served in twins else k0
        self._cov = CovariateEffects(names)
        return True

    @property
    def covariates_enabled(self) -> bool:
        """True once :meth:`enable_covariates` has been called."""
        return self._cov is not None

    @property
    def covariate_names(self) -> tuple[str, ...]:
        """Covariate feature names (empty before :meth:`enable_covariates`)."""
        return () if self._cov is None else self._cov.names

    @property
    def covariate_effects(self) -> CovariateEffects | None:
        """The per-SKU covariate statistics (None before :meth:`enable_covariates`)."""
        return self._cov

    def set_pool_mean(self, coef: Sequence[float] | None) -> None:
        """Set the shared (pooled) coefficient ``w_0`` used from now on (not stored).

        Parameters
        ----------
        coef
            ``w_0`` of shape ``(d,)`` in :attr:`covariate_names` order; None for the prior mean.
            Ignored while covariates are not enabled.

        """
        if self._cov is None:
            return
        self._cov.pool_mean = (self._cov.prior_mean.copy() if coef is None
                               else np.asarray(coef, dtype=np.float64).copy())

    def coefficients(self) -> dict[str, float]:
        """Return this SKU's partially pooled covariate coefficients (empty when disabled)."""
        if self._cov is None:
            return {}
        return dict(zip(self._cov.names, self._cov.coefficients().tolist(), strict=True))

    def lift(self, x: Mapping[str, Any] | None) -> float:
        """Multiplicative lift ``exp(w . x)`` of a period with features ``x`` (1 when disabled)."""
        if self._cov is None:
            return 1.0
        return self._cov.lift(self._cov.vector(x), self._cov.coefficients())

    def _with_lift(self, xs: Sequence[dict] | None) -> Sequence[dict] | None:
        if xs is None or self._cov is None:
            return xs
        cov = self._cov
        w = cov.coefficients()
        return [{**x, "lift": cov.lift(cov.vector(x), w)} if x else x for x in xs]

    def lifted_features(
        self, x: dict | None
    ) -> tuple[np.ndarray | None, np.ndarray | None, float, dict | None]:
        """The features a period is learned with: ``x`` plus its ``lift`` when covariates are enabled.

        Parameters
        ----------
        x
            The period's features (calendar and covariates), or None.

        Returns
        -------
        tuple
            ``(xv, w, lift, xl)``: the covariate vector, the coefficients, the lift
            ``exp(w . xv)`` and ``x`` with ``"lift"`` added; ``(None, None, 1.0, x)`` while
            covariates are not enabled.
        """
        cov = self._cov
        if cov is None:
            return None, None, 1.0, x
        xv = cov.vector(x)
        w = cov.coefficients()
        lift = cov.lift(xv, w)
        xl = {**x, "lift": lift} if x else {"lift": lift}
        return xv, w, lift, xl
