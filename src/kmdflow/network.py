r"""Shallow ReLU networks and their measures; population gradient descent and minibatch SGD.

MATH.md section 6. A network ``f(x) = (1/m) sum_j a_j relu(w_j . x)`` with ``a_j > 0`` is the measure

    mu = (1/m) sum_j a_j |w_j| delta_{w_j / |w_j|}        on S^d,

and its population loss ``1/2 E_x (f - f_nu)^2`` (``x`` uniform on ``S^d``) is the kernel loss
``L(mu)`` of :mod:`kmdflow.kernels.relu`. With ``V = \int k(., theta') d(mu - nu)``, ``r = |w_j|``,
``theta_j = w_j / r``,

    dL/da_j = r V(theta_j) / m,      dL/dw_j = a_j (V(theta_j) theta_j + grad_S V(theta_j)) / m.

Gradient flow with time scaled by ``m`` keeps ``a_j^2 - |w_j|^2`` fixed; from the balanced start
``a_j = |w_j|`` it gives ``d/dt theta_j = -grad_S V``, ``d/dt m_j = -2 m_j V`` (the WFR flow with
``alpha = 2, beta = 1``, :mod:`kmdflow.flows.wfr`). Accordingly the learning rate ``lr`` used here
is a step in that scaled time: ``(a, w) <- (a, w) - lr * m * grad L``, so ``lr * steps`` is the flow
time reached, and gradient descent is the explicit Euler scheme of the flow (error ``O(lr)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from kmdflow.domains import sphere
from kmdflow.flows.wfr import signed_potential
from kmdflow.kernels.relu import ReluKernel, population_loss

__all__ = ["ShallowNetwork", "gradient_descent", "gradient_from_potential", "minibatch_gradient",
           "minibatch_sgd", "network_loss", "population_gradient"]


@dataclass(frozen=True)
class ShallowNetwork:
    """``f(x) = (1/m) sum_j a_j relu(w_j . x)``.

    Parameters
    ----------
    outer : (m,) float
        Output weights ``a_j > 0``.
    inner : (m, d+1) float
        Input weights ``w_j`` (nonzero).
    """

    outer: np.ndarray
    inner: np.ndarray

    def __post_init__(self) -> None:
        w = sphere.check_points(self.inner, "inner")
        a = np.asarray(self.outer, dtype=float)
        if a.shape != (w.shape[0],):
            raise ValueError(f"outer must have shape ({w.shape[0]},) (one per neuron), got {a.shape}")
        if not np.all(np.linalg.norm(w, axis=1) > 0):
            raise ValueError("inner has a zero row; every neuron needs a nonzero input weight")
        object.__setattr__(self, "outer", a)
        object.__setattr__(self, "inner", w)

    @property
    def width(self) -> int:
        return self.outer.size

    @property
    def dim(self) -> int:
        """Sphere dimension ``d`` of the inputs."""
        return self.inner.shape[1] - 1

    @classmethod
    def from_measure(cls, positions, weights) -> ShallowNetwork:
        """The balanced network of ``mu = sum_j m_j delta_{theta_j}``: ``w_j = sqrt(m m_j) theta_j``, ``a_j = |w_j|``."""
        theta = sphere.retract(sphere.check_points(positions))
        w = np.asarray(weights, dtype=float)
        if w.shape != (theta.shape[0],) or not np.all(w > 0):
            raise ValueError(f"weights must be {theta.shape[0]} positive numbers, got shape {w.shape}")
        radius = np.sqrt(theta.shape[0] * w)
        return cls(radius, radius[:, None] * theta)

    @classmethod
    def random_balanced(cls, width: int, dim: int, scale: float = 1.0, seed=0) -> ShallowNetwork:
        """Uniform directions, ``|w_j| = a_j = scale``: the measure ``scale^2 sigma_m``, mass ``scale^2``."""
        theta = sphere.sample_uniform(width, dim, seed)
        return cls(np.full(width, float(scale)), scale * theta)

    def __call__(self, inputs) -> np.ndarray:
        """``f(x)`` at ``inputs (B, d+1)``: ``(B,)``."""
        return np.maximum(np.asarray(inputs, dtype=float) @ self.inner.T, 0.0) @ self.outer / self.width

    def measure(self) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (m, d+1), weights (m,))`` of ``mu = (1/m) sum a_j |w_j| delta_{w_j/|w_j|}``."""
        radius = np.linalg.norm(self.inner, axis=1)
        return self.inner / radius[:, None], self.outer * radius / self.width


def network_loss(kernel: ReluKernel, network: ShallowNetwork, target=None) -> float:
    """Population loss ``1/2 E_x (f - f_nu)^2 = L(mu)`` by the closed-form kernel (no sampling)."""
    positions, weights = network.measure()
    return population_loss(kernel, positions, weights, target)


def population_gradient(kernel: ReluKernel, network: ShallowNetwork, target=None,
                        summation: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """``(dL/da (m,), dL/dw (m, d+1))`` of the population loss, exactly (module docstring)."""
    theta, weights = network.measure()
    values, grad = signed_potential(kernel, theta, weights, target, summation=summation)
    return gradient_from_potential(network, theta, values, grad)


def gradient_from_potential(network: ShallowNetwork, theta: np.ndarray, values: np.ndarray,
                            grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(dL/da (m,), dL/dw (m, d+1))`` from ``V (m,)`` and ``grad_S V (m, d+1)`` at the neurons'
    directions ``theta (m, d+1)`` (module docstring)."""
    radius = np.linalg.norm(network.inner, axis=1)
    m = network.width
    return radius * values / m, network.outer[:, None] * (values[:, None] * theta + grad) / m


def minibatch_gradient(network: ShallowNetwork, target, inputs) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Gradient of the empirical loss ``1/(2B) sum_b (f(x_b) - f_nu(x_b))^2`` and the loss.

    Parameters
    ----------
    network : ShallowNetwork
    target : object with ``output(inputs)`` (AtomMeasure, ZonalMeasure, CircleSeriesMeasure) or None
    inputs : (B, d+1) float
        Sampled inputs.

    Returns
    -------
    grad_a : (m,) float
    grad_w : (m, d+1) float
    loss : float

    Notes
    -----
    With residuals ``e_b``: ``dL/da_j = (1/(B m)) sum_b e_b relu(w_j . x_b)`` and
    ``dL/dw_j = (a_j/(B m)) sum_b e_b 1[w_j . x_b > 0] x_b``. Its expectation over ``x`` is
    :func:`population_gradient`.
    """
    x = np.asarray(inputs, dtype=float)
    pre = x @ network.inner.T
    act = np.maximum(pre, 0.0)
    residual = act @ network.outer / network.width
    if target is not None:
        residual = residual - target.output(x)
    scale = 1.0 / (x.shape[0] * network.width)
    grad_a = scale * (residual @ act)
    grad_w = scale * network.outer[:, None] * (((pre > 0) * residual[:, None]).T @ x)
    return grad_a, grad_w, float(0.5 * np.mean(residual**2))


def _step(network: ShallowNetwork, grads, lr: float) -> ShallowNetwork:
    m = network.width
    return ShallowNetwork(network.outer - lr * m * grads[0], network.inner - lr * m * grads[1])


def _descend(kernel: ReluKernel, network: ShallowNetwork, target, lr: float, steps: int,
             record_every: int, gradient: Callable[[ShallowNetwork], tuple]):
    """``steps`` steps ``network <- _step(network, gradient(network), lr)``, recording the
    population loss every ``record_every`` steps and at the end; returns ``(network, times, losses)``
    as :func:`gradient_descent` does."""
    times, losses = [], []
    for n in range(int(steps) + 1):
        if n % record_every == 0 or n == steps:
            times.append(n * lr)
            losses.append(network_loss(kernel, network, target))
        if n < steps:
            network = _step(network, gradient(network), lr)
    return network, np.array(times), np.array(losses)


def _check_lr(lr: float, steps: int) -> None:
    if not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number (a step in flow time), got {lr!r}")
    if int(steps) < 0:
        raise ValueError(f"steps must be >= 0, got {steps!r}")


def gradient_descent(kernel: ReluKernel, network: ShallowNetwork, target=None, *, lr: float, steps: int,
                     summation: str = "auto", record_every: int = 1):
    """Full-batch gradient descent on the population loss (closed-form kernel, no sampling).

    Parameters
    ----------
    kernel : ReluKernel
    network : ShallowNetwork
        Start.
    target : None, AtomMeasure, ZonalMeasure or CircleSeriesMeasure
    lr : float
        Step in flow time: ``(a, w) <- (a, w) - lr * m * grad L`` (module docstring).
    steps : int
    summation : str
        Potential sums (:mod:`kmdflow.summation.relu`).
    record_every : int
        Record the loss every that many steps.

    Returns
    -------
    network : ShallowNetwork
        After ``steps`` steps (flow time ``lr * steps``).
    times, losses : (K,) float
        The population loss at recorded flow times (start and end included).
    """
    _check_lr(lr, steps)
    return _descend(kernel, network, target, lr, steps, record_every,
                    lambda net: population_gradient(kernel, net, target, summation))


def minibatch_sgd(kernel: ReluKernel, network: ShallowNetwork, target=None, *, lr: float, steps: int,
                  batch: int, seed=0, record_every: int = 1):
    """Minibatch SGD with fresh inputs ``x`` uniform on ``S^d`` each step (seeded).

    Same scaling and returns as :func:`gradient_descent`; the recorded losses are the *population*
    loss (closed form), so the curves compare directly.
    """
    _check_lr(lr, steps)
    if int(batch) < 1:
        raise ValueError(f"batch must be >= 1, got {batch!r}")
    rng = np.random.default_rng(seed)

    def gradient(net: ShallowNetwork) -> tuple[np.ndarray, np.ndarray]:
        inputs = sphere.sample_uniform(int(batch), net.dim, rng)
        grad_a, grad_w, _ = minibatch_gradient(net, target, inputs)
        return grad_a, grad_w

    return _descend(kernel, network, target, lr, steps, record_every, gradient)
