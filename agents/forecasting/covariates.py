r"""Known-future covariates (planned price, promotions): a pooled multiplicative lift.

A period's mean demand is the base forecast of an unchanged candidate (intermittent, seasonal)
times a multiplicative lift[^1]

.. math::

    \mu_t = b_t \exp(w_i^\top x_t),

where ``x_t`` holds the period's covariates (:data:`COVARIATES` plus optional numeric extras):
``log_price_ratio = log(price / reference price)``, so the coefficient on it is a price
**elasticity**, and one 0..1 indicator per promotion kind (the share of the period the promotion
runs), so ``exp(w_k)`` is the kind's lift at the regular price.

Learning one SKU (:class:`CovariateEffects`)
--------------------------------------------
The base model learns the *de-lifted* demand ``y / exp(w_i . x)``; the coefficients are
estimated by weighted least squares on the log scale, the working response of the log-link
GLM's iteratively reweighted least squares evaluated at the data (McCullagh & Nelder 1989,
section 2.5, eq. 2.12 with ``mu = y``)[^2]:

.. math::

    z_t = \log\frac{y_t + c}{b_t + c},\qquad
    I_i \leftarrow \rho I_i + x_t x_t^\top / \sigma_i^2,\qquad
    s_i \leftarrow \rho s_i + x_t \tilde z_t / \sigma_i^2,

with ``c = 0.5`` unit (zero sales), ``b_t`` the base forecast made before the period, the
residual ``z_t - w_i . x_t`` Huber-clipped at 3 sigma in ``\tilde z_t``, ``sigma_i^2`` an EWMA
of the squared clipped log residual (the delta-method variance of ``log y``), and forgetting
``rho = 0.98`` per period with non-zero covariates (a SKU remembers about its last 50
promotions/price changes). ``I_i`` (d x d) and ``s_i`` (d) are the SKU's *own* (unpooled)
sufficient statistics: ``I_i^{-1} s_i`` would be its no-pooling estimate.

Partial pooling
---------------
A single SKU sees few promotions, so its coefficient is shrunk towards a shared one. This is
regularized multi-task learning (Evgeniou & Pontil 2004, eq. 2)[^3]: ``w_i = w_0 + v_i`` with an
L2 penalty ``v_i^T T^{-1} v_i`` on the SKU's deviation. With the quadratic (WLS) loss above the
minimiser has the closed form of a normal hierarchical model's posterior mean (Gelman & Hill
2007, eq. 12.1, multivariate; Lindley & Smith 1972)[^4]:

.. math::

    w_i = (I_i + T^{-1})^{-1} (s_i + T^{-1} w_0),

a precision-weighted average of the SKU's own estimate and the shared one: a SKU without
promotions gets ``w_0``, one with many gets mostly its own. ``T = diag(tau^2)``
(:data:`DEVIATION_SD`: 1.0 for the elasticity, 0.5 for log promotion lifts) is the assumed
spread of SKUs around the shared coefficient.

The shared coefficient ``w_0`` (:class:`CovariatePool`) is the complete-pooling estimate of all
SKUs of an input partition, shrunk to a prior ``m_0`` (elasticity -2.5, near the mean of
Bijmolt, van Heerde & Pieters' 2005 meta-analysis, -2.62[^5]; promotion lifts 0):

.. math::

    w_0 = (\textstyle\sum_i I_i + T_0^{-1})^{-1} (\sum_i s_i + T_0^{-1} m_0).

Replay determinism
------------------
The pool sums ``sum_i I_i`` and ``sum_i s_i`` are kept as **exact integers** (fixed point,
``2^-24``): when a SKU learns, its quantised statistics before and after are subtracted and
added, so the sums equal the sum of the SKUs' current quantised statistics whatever the order
in which SKUs learned (integer addition is associative; float addition is not). The shared
coefficient that SKUs *use* is re-published from these sums only when the partition's event
time crosses a period boundary, before the event that crosses it is applied, so everything a
SKU learns or forecasts depends on the partition's event sequence only, not on cache order or
batch boundaries, and a period's data never reaches another SKU's forecast of that period.

References
----------
[^1]: Wittink, D. R., Addona, M. J., Hawkes, W. J., & Porter, J. C. (1988). SCAN*PRO: The
    estimation, validation and use of promotional effects based on scanner data. Internal
    paper, Cornell University (the multiplicative price/promotion model).
[^2]: McCullagh, P., & Nelder, J. A. (1989). Generalized Linear Models, 2nd ed. Chapman & Hall,
    section 2.5 (IRLS, working response ``z = eta + (y - mu) d eta / d mu``, eq. 2.12).
[^3]: Evgeniou, T., & Pontil, M. (2004). Regularized multi-task learning. Proc. KDD, 109-117,
    eq. (2) (``w_t = w_0 + v_t``, penalty on ``||v_t||^2`` and ``||w_0||^2``).
[^4]: Gelman, A., & Hill, J. (2007). Data Analysis Using Regression and Multilevel/Hierarchical
    Models. Cambridge University Press, section 12.2, eq. (12.1) (partial pooling as a
    precision-weighted average); Lindley, D. V., & Smith, A. F. M. (1972). Bayes estimates for
    the linear model. JRSS B 34(1), 1-41.
[^5]: Bijmolt, T. H. A., van Heerde, H. J., & Pieters, R. G. M. (2005). New empirical
    generalizations on the determinants of price elasticity. Journal of Marketing Research
    42(2), 141-156.

Examples
--------
>>> eff = CovariateEffects()
>>> x = eff.vector({"log_price_ratio": -0.2, "promo_discount": 1.0})
>>> [round(float(v), 3) for v in eff.coefficients()]  # no data: the prior / pool mean
[-2.5, 0.0, 0.0, 0.0, 0.0]
>>> round(eff.lift(x, eff.coefficients()), 3)  # 20 % off at elasticity -2.5
1.649

"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.forecasting.base import OnlineForecaster, check_horizon
from agents.policy.controller import STEP, ServiceController
from agents.supply import LeadTimePool

__all__ = [
    "COVARIATES",
    "DEVIATION_SD",
    "POOL_PRIOR_SD",
    "PRIOR_MEAN",
    "PROMO_KINDS",
    "CovariateEffects",
    "CovariatePool",
    "Lifted",
    "pooled_coefficients",
]

#: promotion mechanisms of :class:`schemas.events.PromotionPlanned`, one feature each
PROMO_KINDS: tuple[str, ...] = ("discount", "display", "feature", "multi_buy")
#: the standard covariate features, in this order; extras (``x_*``) follow
COVARIATES: tuple[str, ...] = ("log_price_ratio", *(f"promo_{k}" for k in PROMO_KINDS))
#: prior mean of the shared coefficients (elasticity; log lift per promotion kind)
PRIOR_MEAN: dict[str, float] = {"log_price_ratio": -2.5}
#: prior standard deviation of the shared coefficients around :data:`PRIOR_MEAN`
POOL_PRIOR_SD: dict[str, float] = {"log_price_ratio": 1.0}
#: standard deviation ``tau`` of a SKU's coefficient around the shared one
DEVIATION_SD: dict[str, float] = {
    "log_price_ratio": 1.0, **{f"promo_{k}": 0.5 for k in PROMO_KINDS}
}

_DEFAULT_SD = 1.0  # prior sds of features not named above (extras, promotion kinds' pool prior)
_C = 0.5  # units added to demand and base in the log ratio (zero sales)
_RHO = 0.98  # forgetting per period with non-zero covariates
_SIGMA_DECAY = 0.05  # weight of the newest squared log residual in sigma^2
_SIGMA0 = 0.25  # initial sigma^2 of the log residual
_SIGMA_FLOOR = 1e-3
_CLIP = 3.0  # Huber clip of the log residual, in sigmas
# |w . x| is clipped: lifts stay within [e^-5, e^5] ~ [1/150, 150]. A numerical guard against a
# diverging estimate, not a model: it must sit above every real lift (promotion weeks of the
# Dominick's canned tuna sell 30-50x the regular week; e^3 = 20x, the former bound, clipped them)
_MAX_LOG_LIFT = 5.0
_SCALE = 1 << 24  # fixed point of the pool sums


def _prior(names: Sequence[str], table: Mapping[str, float], default: float) -> np.ndarray:
    return np.array([float(table.get(n, default)) for n in names], dtype=np.float64)


def pooled_coefficients(info: np.ndarray, score: np.ndarray, mean: np.ndarray,
                        sd: np.ndarray) -> np.ndarray:
    r"""Posterior mean ``(info + diag(sd)^-2)^-1 (score + diag(sd)^-2 mean)``.

    Parameters
    ----------
    info
        Information matrix ``sum x x^T / sigma^2`` of shape ``(d, d)``.
    score
        ``sum x z / sigma^2`` of shape ``(d,)``.
    mean
        Prior mean (the shared coefficient), shape ``(d,)``.
    sd
        Prior standard deviations (> 0), shape ``(d,)``.

    Returns
    -------
    numpy.ndarray
        Coefficients of shape ``(d,)`` (Gelman & Hill 2007, eq. 12.1; Evgeniou & Pontil 2004).

    Examples
    --------
    >>> import numpy as np
    >>> w = pooled_coefficients(np.eye(1) * 3.0, np.array([3.0]), np.zeros(1), np.ones(1))
    >>> float(w[0])  # 3 units of own information at 1.0, 1 unit of prior at 0
    0.75

    """
    prec = 1.0 / (sd * sd)
    return np.linalg.solve(info + np.diag(prec), score + prec * mean)


class CovariateEffects:
    """One SKU's own covariate statistics and its partially pooled coefficients.

    Parameters
    ----------
    names
        Covariate feature names (default :data:`COVARIATES`); the order fixes the vector layout.

    Raises
    ------
    ValueError
        When ``names`` is empty or has duplicates.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> eff = CovariateEffects()
    >>> for t in range(200):
    ...     x = eff.vector({"promo_display": float(t % 5 == 0)})
    ...     eff.learn(x, 100.0 * np.exp(0.7 * x[2]) * rng.lognormal(0, 0.1), 100.0,
    ...               eff.coefficients())
    >>> round(float(eff.coefficients()[2]), 1)  # learned display lift: exp(0.7) = 2.0
    0.7

    """

    def __init__(self, names: Sequence[str] = COVARIATES) -> None:
        names = tuple(str(n) for n in names)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"covariate names must be non-empty and unique; got {names!r}.")
        self.names = names
        d = len(names)
        self._index = {n: i for i, n in enumerate(names)}
        self.prior_mean = _prior(names, PRIOR_MEAN, 0.0)
        self.prior_sd = _prior(names, POOL_PRIOR_SD, _DEFAULT_SD)
        self.deviation_sd = _prior(names, DEVIATION_SD, _DEFAULT_SD)
        self.pool_mean = self.prior_mean.copy()  # the published shared coefficient w_0
        self.sigma2 = _SIGMA0
        self.n_informative = 0.0
        self.info = np.zeros((d, d))
        self.score = np.zeros(d)
        self.state_size = 2 + d * d + d

    @property
    def dim(self) -> int:
        """Number of covariates ``d``."""
        return len(self.names)

    def vector(self, x: Mapping[str, Any] | None) -> np.ndarray:
        """Covariate vector of shape ``(d,)`` from a feature dict (missing features are 0)."""
        v = np.zeros(len(self.names))
        if x:
            for n, i in self._index.items():
                val = x.get(n)
                if val:
                    v[i] = float(val)
        return v

    def coefficients(self) -> np.ndarray:
        """Return the partially pooled coefficients ``w_i``, shape ``(d,)`` (module docstring)."""
        if self.n_informative == 0.0:
            return self.pool_mean.copy()
        return pooled_coefficients(self.info, self.score, self.pool_mean, self.deviation_sd)

    @staticmethod
    def lift(x: np.ndarray, w: np.ndarray) -> float:
        """Multiplicative lift ``exp(clip(w . x, -5, 5))`` (dimensionless, 1 when ``x == 0``)."""
        eta = float(x @ w)
        if eta == 0.0:
            return 1.0
        return math.exp(min(_MAX_LOG_LIFT, max(-_MAX_LOG_LIFT, eta)))

    def learn(self, x: np.ndarray, y: float, base: float, w: np.ndarray) -> None:
        """Learn one period: demand ``y`` (units), base forecast ``base`` (units), features ``x``.

        ``w`` are the coefficients the period was forecast with (for the residual scale).
        """
        z = math.log((y + _C) / (max(base, 0.0) + _C))
        eta = float(x @ w)
        e = z - eta
        s2 = self.sigma2
        bound = _CLIP * math.sqrt(s2)
        e_c = min(bound, max(-bound, e))
        self.sigma2 = max(_SIGMA_FLOOR, s2 + _SIGMA_DECAY * (e_c * e_c - s2))
        if not np.any(x):
            return
        wt = 1.0 / s2
        self.info = _RHO * self.info + wt * np.outer(x, x)
        self.score = _RHO * self.score + wt * (eta + e_c) * x
        self.n_informative += 1.0

    # --- state ---------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """``[sigma2, n_informative, info (d*d, row-major), score (d)]``, float64."""
        return np.concatenate(([self.sigma2, self.n_informative], self.info.ravel(), self.score))

    def load_state(self, values: np.ndarray) -> None:
        """Inverse of :meth:`state`.

        Raises
        ------
        ValueError
            On a wrong length or a non-positive variance.

        """
        v = np.asarray(values, dtype=np.float64).ravel()
        d = self.dim
        if v.shape[0] != self.state_size:
            raise ValueError(
                f"covariate state must hold {self.state_size} floats; got {v.shape[0]}.")
        if not v[0] > 0.0:
            raise ValueError("covariate residual variance must be positive.")
        self.sigma2, self.n_informative = float(v[0]), float(v[1])
        self.info = v[2 : 2 + d * d].reshape(d, d).copy()
        self.score = v[2 + d * d :].copy()

    def quantised(self) -> list[int]:
        """``info`` and ``score`` as exact fixed-point integers (the SKU's pool contribution)."""
        return [int(round(v * _SCALE)) for v in (*self.info.ravel(), *self.score)]


class CovariatePool:
    """The shared coefficient ``w_0`` of one input partition (module docstring).

    Parameters
    ----------
    names
        Covariate feature names, as the SKUs' :class:`CovariateEffects`.

    Examples
    --------
    >>> pool = CovariatePool()
    >>> a, b = CovariateEffects(), CovariateEffects()
    >>> before = a.quantised()
    >>> a.learn(a.vector({"promo_feature": 1.0}), 300.0, 100.0, a.coefficients())
    >>> pool.add(before, a.quantised())
    >>> pool.publish(86400)
    True
    >>> round(float(pool.coef[3]), 2)  # one feature week at 3x (log 3 = 1.1), shrunk to 0
    0.88

    """

    def __init__(self, names: Sequence[str] = COVARIATES) -> None:
        self.names = tuple(names)
        d = len(self.names)
        self.info = [0] * (d * d)
        self.score = [0] * d
        self.prior_mean = _prior(self.names, PRIOR_MEAN, 0.0)
        self.prior_sd = _prior(self.names, POOL_PRIOR_SD, _DEFAULT_SD)
        self.coef = self.prior_mean.copy()
        self.boundary = -1  # period boundary (epoch s) of the last publication
        # the partition's fill-rate controller (agents.policy.controller), stepped at publication
        self.service = ServiceController()
        # the partition's lead-time deviations per supplier (agents.supply), published with w_0
        self.lead_times = LeadTimePool()

    def add(self, before: Sequence[int], after: Sequence[int]) -> None:
        """Replace one SKU's quantised contribution ``before`` by ``after`` (exact)."""
        d2 = len(self.info)
        for i in range(d2):
            self.info[i] += after[i] - before[i]
        for i in range(len(self.score)):
            self.score[i] += after[d2 + i] - before[d2 + i]

    def publish(self, boundary: int, fill_rate: float | None = None, gain: float = STEP) -> bool:
        """Re-estimate ``w_0`` if ``boundary`` is past the last one; True if the pool changed.

        The boundary itself is always the latest one seen (it is a function of the latest
        event time, so it need not be persisted when nothing else changed). With a
        ``fill_rate`` target, the partition's :class:`~agents.policy.controller.ServiceController`
        takes its period step too, with ``gain`` (its cost moving also counts as a change); the
        lead-time pool publishes its sums (:meth:`agents.supply.LeadTimePool.publish`).
        """
        if boundary <= self.boundary:
            return False
        self.boundary = int(boundary)
        moved = fill_rate is not None and self.service.step(fill_rate, gain)
        moved = self.lead_times.publish() or moved
        d = len(self.names)
        info = np.array(self.info, dtype=np.float64).reshape(d, d) / _SCALE
        score = np.array(self.score, dtype=np.float64) / _SCALE
        coef = pooled_coefficients(info, score, self.prior_mean, self.prior_sd)
        changed = not np.array_equal(coef, self.coef)
        self.coef = coef
        return changed or moved

    def to_list(self) -> list[Any]:
        """Compact msgpack-friendly encoding (integers exact, floats as IEEE doubles).

        The controller is appended only once it has counted an order, and the lead-time pool
        (after it, None standing for a controller that counted nothing) only once a lead time
        was observed, so a pool without them encodes byte for byte as before they existed.
        """
        coef = [float(v) for v in self.coef]
        out: list[Any] = [list(self.names), self.info, self.score, coef, self.boundary]
        service = self.service != ServiceController()
        if service or self.lead_times:
            out.append(self.service.to_list() if service else None)
        if self.lead_times:
            out.append(self.lead_times.to_list())
        return out

    @classmethod
    def from_list(cls, data: Sequence[Any]) -> CovariatePool:
        """Inverse of :meth:`to_list`.

        Raises
        ------
        ValueError
            On inconsistent lengths.

        """
        names, info, score, coef, boundary = data[:5]
        pool = cls(names)
        if len(data) > 5 and data[5] is not None:
            pool.service = ServiceController.from_list(data[5])
        if len(data) > 6:
            pool.lead_times = LeadTimePool.from_list(data[6])
        d = len(pool.names)
        if len(info) != d * d or len(score) != d or len(coef) != d:
            raise ValueError("covariate pool lengths do not match its names.")
        pool.info, pool.score = [int(v) for v in info], [int(v) for v in score]
        pool.coef = np.array(coef, dtype=np.float64)
        pool.boundary = int(boundary)
        return pool


class Lifted(OnlineForecaster):
    """A candidate times the covariate lift: the covariate-aware twin of a base candidate.

    ``x["lift"]`` (dimensionless, default 1) is the period's multiplicative lift
    ``exp(w . x)`` computed by :class:`~agents.forecasting.selection.DemandForecaster` from the
    pooled coefficients. The base learns ``y / lift`` (the de-lifted demand) and forecasts are
    ``base * lift``; with ``lift == 1`` everywhere it is the base exactly.

    Parameters
    ----------
    base
        The wrapped forecaster (used as is, not cloned).

    Examples
    --------
    >>> from agents.forecasting import SBA
    >>> m = Lifted(SBA())
    >>> for y, lift in [(10, 1.0), (30, 3.0), (10, 1.0)]:
    ...     m.learn_one(y, {"lift": lift})
    >>> m.forecast(2, [{"lift": 1.0}, {"lift": 2.0}])  # SBA: 0.95 x the size 10
    [9.5, 19.0]

    """

    def __init__(self, base: OnlineForecaster) -> None:
        self.base = base
        self.state_size = base.state_size

    def learn_one(self, y: float, x: dict | None = None) -> None:
        """Learn the de-lifted demand ``y / x["lift"]``."""
        lift = float(x.get("lift", 1.0)) if x else 1.0
        self.base.learn_one(y / lift if lift != 1.0 else y, x)

    def predict_next(self, x: dict | None = None) -> float:
        """Return the base's one-step forecast times ``x["lift"]``."""
        lift = float(x.get("lift", 1.0)) if x else 1.0
        return self.base.predict_next(x) * lift

    def forecast(self, horizon: int, xs: Sequence[dict] | None = None) -> list[float]:
        """Return the base's forecasts times each period's ``lift``."""
        h = check_horizon(horizon, xs)
        out = self.base.forecast(h, xs)
        if xs is None:
            return out
        return [v * float(x.get("lift", 1.0)) if x else v for v, x in zip(out, xs, strict=True)]

    def state(self) -> np.ndarray:
        """Return the base's state vector."""
        return self.base.state()

    def state_values(self) -> list[float]:
        """Return the base's state values."""
        return self.base.state_values()

    def load_state(self, state: np.ndarray) -> None:
        """Restore the base's state."""
        self.base.load_state(state)
