r"""The conic particle method for the Wasserstein--Fisher--Rao flow of the ReLU loss on ``S^d``.

MATH.md section 6: for ``mu = sum_j m_j delta_{theta_j}`` and ``V = \int k(., theta') d(mu - nu)``,

.. math::

    \dot\theta_j = -\beta\, \nabla_S V(\theta_j), \qquad \dot m_j = -\alpha\, m_j V(\theta_j),

the particle form of ``d/dt mu = beta div(mu grad V) - alpha mu V``; the network case is
``alpha = 2, beta = 1``. Kernel and targets: :mod:`kmdflow.kernels.relu`; sums:
:mod:`kmdflow.summation.relu`; sphere conventions: :mod:`kmdflow.domains.sphere`.

State layout and the choices made
    ``y = concat(x.ravel(), log m)`` with ``x (m, d+1)``. Weights are integrated through ``log m``
    (``d/dt log m_j = -alpha V``), so they stay positive whatever the step. Positions are *not*
    retracted inside the time stepper (the driver has no post-step hook); instead the rhs evaluates
    everything at ``theta = x / |x|`` and returns the tangent velocity ``-beta |x| grad_S V(theta)``.
    In exact arithmetic ``|x|`` is then conserved and ``d/dt (x/|x|)`` is exactly the flow, for any
    radius; a Runge--Kutta step changes ``|x|`` only by its local error (measured: ``1e-12`` to
    ``1e-11`` over ``t = 5`` at ``rtol = 1e-9``), which the retraction in :meth:`WFRParticleFlow.positions`,
    :meth:`~WFRParticleFlow.snapshot` and every diagnostic removes. Snapshots are unit vectors to
    round-off.
Loss and dissipation
    ``L = 1/2 <mu - nu, mu - nu>_k``;
    ``dL/dt = -(beta sum_j m_j |grad_S V(theta_j)|^2 + alpha sum_j m_j V(theta_j)^2)`` (the
    ``dissipation`` diagnostic). On the circle the loss cannot see odd harmonics ``>= 3``, so it may
    converge to 0 while ``mu`` does not converge to ``nu``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kmdflow.domains import sphere
from kmdflow.kernels.relu import CircleSeriesMeasure, ReluKernel, ZonalMeasure
from kmdflow.summation.relu import DENSE_TILE_BYTES, RELU_SUMMATIONS, relu_potential

__all__ = ["AtomMeasure", "WFRParticleFlow", "loss_from_potential", "signed_potential"]


@dataclass(frozen=True, eq=False)
class AtomMeasure:
    """A target made of weighted atoms (teacher neurons): ``nu = sum_l u_l delta_{y_l}``.

    Parameters
    ----------
    positions : (M, d+1) float
        Unit vectors (normalised here).
    weights : (M,) float
        Positive masses.
    """

    positions: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        y = sphere.retract(sphere.check_points(self.positions, "target positions"))
        u = np.asarray(self.weights, dtype=float)
        if u.shape != (y.shape[0],) or not np.all(u > 0):
            raise ValueError(f"target weights must be {y.shape[0]} positive numbers (one per atom), got "
                             f"shape {u.shape}, min {u.min() if u.size else None!r}")
        object.__setattr__(self, "positions", y)
        object.__setattr__(self, "weights", u)

    @property
    def mass(self) -> float:
        return float(self.weights.sum())

    def output(self, inputs) -> np.ndarray:
        """Network output ``f_nu(x) = sum_l u_l relu(y_l . x)`` at ``inputs (B, d+1)``."""
        return np.maximum(np.asarray(inputs, dtype=float) @ self.positions.T, 0.0) @ self.weights


def signed_potential(kernel: ReluKernel, points, weights, target=None, *, at_target: bool = False,
                     summation: str = "auto", memory_bytes: float = DENSE_TILE_BYTES):
    r"""``V = \int k(., theta') d(mu - nu)`` and ``grad_S V`` at the atoms of ``mu``.

    Parameters
    ----------
    kernel : ReluKernel
    points : (m, d+1) float
        Unit vectors ``theta_j``.
    weights : (m,) float
        Masses ``m_j``.
    target : None, AtomMeasure, ZonalMeasure or CircleSeriesMeasure
    at_target : bool
        For an :class:`AtomMeasure`, also return ``V`` at its atoms (for the loss).
    summation : {"auto", "sorted", "dense"}
    memory_bytes : float
        Tile bound of the dense sums.

    Returns
    -------
    V : (m,) float
    grad : (m, d+1) float
    V_target : (M,) float, only with ``at_target``
    """
    if isinstance(target, AtomMeasure):
        sources = np.concatenate([points, target.positions])
        charges = np.concatenate([weights, -target.weights])
        where = sources if at_target else points
        values, grad = relu_potential(kernel, where, sources, charges, summation, memory_bytes)
        m = points.shape[0]
        out = (values[:m], grad[:m])
        return out + (values[m:],) if at_target else out
    values, grad = relu_potential(kernel, points, points, weights, summation, memory_bytes)
    if target is not None:
        v_nu, g_nu = target.potential(points)
        values, grad = values - v_nu, grad - g_nu
    return (values, grad, np.zeros(0)) if at_target else (values, grad)


def loss_from_potential(target, points: np.ndarray, weights: np.ndarray, values: np.ndarray,
                        v_target: np.ndarray) -> float:
    r"""The loss ``L = 1/2 <mu - nu, mu - nu>_k`` from the signed potential (:func:`signed_potential`).

    Parameters
    ----------
    target : None, AtomMeasure, ZonalMeasure or CircleSeriesMeasure
    points : (m, d+1) float
        Atoms of ``mu``.
    weights : (m,) float
        Their masses.
    values : (m,) float
        ``V`` at the atoms.
    v_target : (M,) float
        ``V`` at the teacher's atoms (``at_target=True``; empty for densities).

    Notes
    -----
    ``L = 1/2 sum_j m_j V(theta_j) - 1/2 <nu, mu - nu>_k``; the last term is
    ``-1/2 sum_l u_l V(y_l)`` for atoms and ``1/2 (<nu, nu> - sum_j m_j V_nu(theta_j))`` for a density.
    """
    if isinstance(target, AtomMeasure):
        return float(0.5 * (weights @ values - target.weights @ v_target))
    if target is not None:
        v_nu = target.potential(points)[0]
        return float(0.5 * (weights @ values - weights @ v_nu + target.self_energy))
    return float(0.5 * weights @ values)


class WFRParticleFlow:
    """Weighted particles on ``S^d`` following the WFR flow of the ReLU loss (module docstring).

    Parameters
    ----------
    kernel : ReluKernel
    positions : (m, d+1) float
        Initial unit vectors (normalised here).
    weights : (m,) float
        Initial positive masses.
    target : None, AtomMeasure, ZonalMeasure or CircleSeriesMeasure
        The teacher ``nu`` (``None``: zero).
    alpha, beta : float
        Fisher--Rao and Wasserstein rates (network: ``2, 1``); ``alpha = 0`` is the Wasserstein flow.
    summation : {"auto", "sorted", "dense"}
        See :mod:`kmdflow.summation.relu`.
    memory_bytes : float
        Tile bound of the dense sums.
    """

    representation = "particles"
    error_norm = "normwise"

    def __init__(self, kernel: ReluKernel, positions, weights, target=None, *, alpha: float = 2.0,
                 beta: float = 1.0, summation: str = "auto", memory_bytes: float = DENSE_TILE_BYTES):
        x = sphere.check_points(positions)
        if x.shape[1] != kernel.dim + 1:
            raise ValueError(f"positions must be points of S^{kernel.dim} with shape (m, {kernel.dim + 1}), "
                             f"got {x.shape}")
        w = np.asarray(weights, dtype=float)
        if w.shape != (x.shape[0],) or not np.all(w > 0):
            raise ValueError(f"weights must be {x.shape[0]} positive numbers (one per particle); the WFR "
                             f"flow keeps them positive through log m. Got shape {w.shape}")
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if summation not in RELU_SUMMATIONS:
            raise ValueError(f"summation={summation!r}: choose one of {', '.join(RELU_SUMMATIONS)}")
        if target is not None and not isinstance(target, (AtomMeasure, ZonalMeasure, CircleSeriesMeasure)):
            raise ValueError(f"target must be None, AtomMeasure, ZonalMeasure or CircleSeriesMeasure, got "
                             f"{type(target).__name__}")
        self.kernel = kernel
        self.target = target
        self.alpha, self.beta = float(alpha), float(beta)
        self.summation = summation
        self.memory_bytes = memory_bytes
        self.shape = x.shape
        self._y0 = np.concatenate([sphere.retract(x).ravel(), np.log(w)])

    def initial_state(self) -> np.ndarray:
        return self._y0.copy()

    def split(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw positions ``x (m, d+1)`` (not normalised) and log-weights ``(m,)`` of a state."""
        n = self.shape[0] * self.shape[1]
        return y[:n].reshape(self.shape), y[n:]

    def positions(self, y: np.ndarray) -> np.ndarray:
        """Unit vectors ``theta (m, d+1)`` of a state."""
        return sphere.retract(self.split(y)[0])

    def weights(self, y: np.ndarray) -> np.ndarray:
        """Masses ``m (m,)`` of a state (positive)."""
        return np.exp(self.split(y)[1])

    def potential(self, y: np.ndarray, at_target: bool = False):
        """``V (m,)`` and ``grad_S V (m, d+1)`` at the particles (:func:`signed_potential`)."""
        return signed_potential(self.kernel, self.positions(y), self.weights(y), self.target,
                                at_target=at_target, summation=self.summation, memory_bytes=self.memory_bytes)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """``(-beta |x| grad_S V, -alpha V)``, flattened like the state."""
        x, _ = self.split(y)
        values, grad = self.potential(y)
        radius = np.linalg.norm(x, axis=1, keepdims=True)
        return np.concatenate([(-self.beta * radius * grad).ravel(), -self.alpha * values])

    def _energy_parts(self, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
        w = self.weights(y)
        values, grad, v_target = self.potential(y, at_target=True)
        return loss_from_potential(self.target, self.positions(y), w, values, v_target), w, values, grad

    def energy(self, y: np.ndarray) -> float:
        """The loss ``L = 1/2 <mu - nu, mu - nu>_k`` (:func:`loss_from_potential`)."""
        return self._energy_parts(y)[0]

    def dissipation(self, y: np.ndarray) -> float:
        """``-dL/dt = beta sum m |grad_S V|^2 + alpha sum m V^2``."""
        return self.diagnostics(y)["dissipation"]

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        loss, w, values, grad = self._energy_parts(y)
        dissipation = self.beta * w @ np.sum(grad * grad, axis=1) + self.alpha * w @ values**2
        return {"energy": loss, "dissipation": float(dissipation), "mass": float(w.sum())}

    def radius_drift(self, y: np.ndarray) -> float:
        """``max_j | |x_j| - 1 |``: how far the raw state left the sphere (retracted everywhere)."""
        return float(np.max(np.abs(np.linalg.norm(self.split(y)[0], axis=1) - 1.0)))

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """``positions (m, d+1)`` unit vectors and ``weights (m,)``."""
        return {"positions": self.positions(y), "weights": self.weights(y)}
