r"""Is the series still alive? A two-state (alive / dead) filter of the demand occurrence.

A SKU@location can stop selling for good: the item is delisted, an account stops ordering, a
store closes. Exponential smoothing learns this only slowly (Croston and SBA not at all: their
size and interval do not move during a run of zeros; TSB's occurrence probability decays by
``1 - alpha`` per period), so forecasts and order-up-to levels stay high for many periods after
the last sale. Teunter, Syntetos & Babai (2011) motivate TSB with exactly this obsolescence
risk[^1]; the "buy till you die" customer-base models make it explicit with a latent alive/dead
state and the probability that a customer is still alive given the time since the last purchase
(Schmittlein, Morrison & Colombo 1987, Pareto/NBD ``P(alive)``[^2]; Fader, Hardie & Lee 2005,
BG/NBD, eq. 8[^3]). :class:`AliveFilter` is the per-period (discrete-time) version of that
model, filtered online with the forward recursion of a hidden Markov model (Rabiner 1989,
eq. 19-20[^4]):

* the state is *alive* or *dead*; an alive series dies before the next period with probability
  ``h`` (the hazard; :data:`HAZARD`), a dead one stays dead;
* an alive series has demand in a period with probability ``p``; a dead one never has;
* ``p`` is the posterior mean of a Beta(1, 1) prior given the periods *known* to be alive,
  ``p = (1 + n_+) / (2 + n_alive)``: ``n_+`` periods with demand among the ``n_alive`` periods up
  to the last one with demand. Death is absorbing and a dead series sells nothing, so a sale
  proves the series was alive in every earlier period (the smoothed state is exact there), while
  the current run of empty periods is the ambiguous part and is left out: the zeros of a dead
  run do not lower ``p``, and the zeros an intermittent series has between sales count as soon
  as its next sale arrives.

Per period, with ``pi`` the probability of being alive after the previous period:

.. math::

    \pi^- = (1 - h)\,\pi, \qquad
    \pi \leftarrow \begin{cases} 1 & y > 0 \\
        \dfrac{\pi^- (1 - p)}{\pi^- (1 - p) + 1 - \pi^-} & y = 0, \end{cases}

A forecaster's mean for an alive series, times ``pi``, is the mean of the alive/dead mixture
(a dead series sells nothing). The model's probability of being alive ``j`` periods ahead is
``pi (1 - h)^j``, but forecasts use ``pi`` for every horizon: the hazard is the filter's prior
odds of a change, and as a forecast discount it would lower every living series' forecast by a
factor that depends on the period length (``0.99^28 = 0.75`` over four weeks of daily periods)
and on nothing the series showed. So a series that has not had an empty period forecasts
exactly as without the filter. For a series that sells nearly every period (``p`` close to 1)
one zero is already strong evidence (likelihood ratio ``1 - p`` against ``h``), two are nearly
conclusive; for an intermittent series (``p = 0.1``) it takes dozens of zeros, as it should.
The first sale after a zero run brings ``pi`` back to 1 at once.

References
----------
[^1]: Teunter, R. H., Syntetos, A. A., & Babai, M. Z. (2011). Intermittent demand: Linking
    forecasting to inventory obsolescence. European Journal of Operational Research, 214(3),
    606-615.
[^2]: Schmittlein, D. C., Morrison, D. G., & Colombo, R. (1987). Counting your customers: Who
    are they and what will they do next? Management Science, 33(1), 1-24.
[^3]: Fader, P. S., Hardie, B. G. S., & Lee, K. L. (2005). "Counting your customers" the easy
    way: An alternative to the Pareto/NBD model. Marketing Science, 24(2), 275-284, eq. (8).
[^4]: Rabiner, L. R. (1989). A tutorial on hidden Markov models and selected applications in
    speech recognition. Proceedings of the IEEE, 77(2), 257-286, eq. (19)-(20).

Examples
--------
>>> f = AliveFilter()
>>> for _ in range(50):
...     f.learn(120.0)
>>> round(f.occurrence, 3), f.alive
(0.981, 1.0)
>>> f.learn(0.0)
>>> round(f.alive, 2)    # one zero after 50 sales: likelihood ratio 1 - p = 0.019 vs h = 0.01
0.66
>>> f.learn(0.0)
>>> round(f.alive, 3)    # two zeros: probably dead
0.034
>>> f.learn(0.0)
>>> round(f.alive, 4)    # three: almost surely
0.0007
>>> f.survival(2) == [f.alive, f.alive]
True
>>> f.learn(40.0)
>>> f.alive
1.0

"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["HAZARD", "AliveFilter"]

#: prior probability per period that an alive series dies before the next period (an expected
#: life of 100 periods: about two years of weekly periods, a quarter of a year of daily ones)
HAZARD = 0.01


class AliveFilter:
    """Filtered probability that a demand series is still alive (module docstring).

    Parameters
    ----------
    hazard
        Probability ``h`` in [0, 1) per period that an alive series dies (default
        :data:`HAZARD`); 0 never declares a series dead.

    Raises
    ------
    ValueError
        When ``hazard`` is outside [0, 1).

    """

    state_size = 4

    def __init__(self, hazard: float = HAZARD) -> None:
        if not 0.0 <= float(hazard) < 1.0:
            raise ValueError(f"hazard must be in [0, 1); got {hazard!r}.")
        self.hazard = float(hazard)
        self.alive = 1.0  # P(alive | demand up to the last learned period)
        self.n_pos = 0.0  # periods with demand
        self.n_alive = 0.0  # periods up to and including the last one with demand
        self.run = 0.0  # empty periods since the last one with demand

    @property
    def occurrence(self) -> float:
        """Probability ``p`` of demand in a period while alive (Beta(1, 1) posterior mean)."""
        return (1.0 + self.n_pos) / (2.0 + self.n_alive)

    def learn(self, y: float) -> None:
        """Update with the demand ``y`` (units, >= 0) of one closed period."""
        prior = (1.0 - self.hazard) * self.alive
        if y > 0.0:
            self.alive = 1.0
            self.n_pos += 1.0
            self.n_alive += self.run + 1.0
            self.run = 0.0
        else:
            a = prior * (1.0 - self.occurrence)
            self.alive = a / (a + 1.0 - prior) if a > 0.0 else 0.0
            self.run += 1.0

    def survival(self, horizon: int) -> list[float]:
        """Weights of the next ``horizon`` periods' forecasts: the filtered ``P(alive)``, each.

        The model's own probability of being alive ``j`` periods ahead is
        ``pi (1 - h)^j``; the forecasts use ``pi`` for every ``j`` (module docstring:
        the hazard is the filter's prior odds of a change, not a forecast discount).
        """
        return [self.alive] * int(horizon)

    # --- state ---------------------------------------------------------------------------
    def state(self) -> np.ndarray:
        """``[alive, n_pos, n_alive, run]``, float64, shape ``(4,)``."""
        return np.array([self.alive, self.n_pos, self.n_alive, self.run], dtype=np.float64)

    def load_state(self, values: Sequence[float] | np.ndarray) -> None:
        """Inverse of :meth:`state`.

        Raises
        ------
        ValueError
            On a wrong length, a probability outside [0, 1] or inconsistent counts.

        """
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.shape[0] != self.state_size:
            raise ValueError(
                f"alive filter state must hold {self.state_size} floats; got {v.shape[0]}.")
        alive, n_pos, n_alive, run = (float(x) for x in v)
        if not 0.0 <= alive <= 1.0 or not 0.0 <= n_pos <= n_alive or run < 0.0:
            raise ValueError("alive filter state is out of range.")
        self.alive, self.n_pos, self.n_alive, self.run = alive, n_pos, n_alive, run
