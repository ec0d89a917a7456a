r"""A finite-width two-layer ReLU network trained on its population loss, as a flow for the driver.

The state is the parameters ``y = concat(a (m,), w.ravel() (m (d+1),))`` of
``f(x) = (1/m) sum_j a_j relu(w_j . x)`` (:mod:`kmdflow.network`), and

.. math::

    \frac{dy}{dt} = -m\, \nabla_{(a, w)} L,

the gradient flow with time scaled by ``m``. The explicit Euler scheme with step ``dt`` is then
exactly gradient descent with learning rate ``dt`` (:func:`kmdflow.network.gradient_descent`), and
with ``batch`` set the gradient is that of a fresh minibatch of inputs drawn uniformly on ``S^d`` from
a generator seeded by ``(seed, step)``, ``step = round(t / dt)``: minibatch SGD, reproducible and
exactly resumable from a checkpoint. From a balanced start (``a_j = |w_j|``) the measure of the
network (``theta_j = w_j / |w_j|``, masses ``a_j |w_j| / m``) follows the WFR flow with
``alpha = 2, beta = 1`` (:mod:`kmdflow.flows.wfr`) up to ``O(dt)``.

Diagnostics (population quantities, closed-form kernel, no sampling)
    ``energy`` ``L``; ``dissipation`` ``m |grad L|^2 = -dL/dt`` along the gradient flow,
    ``= (1/m) sum_j (|w_j|^2 V_j^2 + a_j^2 (V_j^2 + |grad_S V_j|^2))``; ``mass`` of the measure.
"""

from __future__ import annotations

import numpy as np

from kmdflow.domains import sphere
from kmdflow.flows.wfr import loss_from_potential, signed_potential
from kmdflow.kernels.relu import ReluKernel
from kmdflow.network import ShallowNetwork, gradient_from_potential, minibatch_gradient

__all__ = ["NetworkFlow"]


class NetworkFlow:
    """Training of a :class:`~kmdflow.network.ShallowNetwork` (module docstring).

    Parameters
    ----------
    kernel : ReluKernel
    network : ShallowNetwork
        The start.
    target : None, AtomMeasure, ZonalMeasure or CircleSeriesMeasure
        The teacher.
    summation : {"auto", "sorted", "dense"}
        Potential sums of the population gradient (:mod:`kmdflow.summation.relu`).
    batch : int, optional
        Minibatch size: SGD on sampled inputs instead of the population gradient.
    dt : float, optional
        The step (learning rate); needed with ``batch`` to number the steps.
    seed : int
        Seed of the minibatches.
    """

    representation = "particles"
    error_norm = "normwise"

    def __init__(self, kernel: ReluKernel, network: ShallowNetwork, target=None, *, summation: str = "auto",
                 batch: int | None = None, dt: float | None = None, seed: int = 0):
        if network.dim != kernel.dim:
            raise ValueError(f"the network's inputs live on S^{network.dim} but the kernel on S^{kernel.dim}")
        if batch is not None and not (dt is not None and dt > 0):
            raise ValueError("minibatch SGD numbers its steps by t / dt: pass the fixed step dt")
        self.kernel, self.target, self.summation = kernel, target, summation
        self.batch, self.dt, self.seed = batch, dt, int(seed)
        self.width = network.width
        self.shape = network.inner.shape
        self._y0 = np.concatenate([network.outer, network.inner.ravel()])

    def initial_state(self) -> np.ndarray:
        return self._y0.copy()

    def network(self, y: np.ndarray) -> ShallowNetwork:
        """The network of a state."""
        return ShallowNetwork(y[: self.width], y[self.width:].reshape(self.shape))

    def _check_outer_weights(self, y: np.ndarray) -> None:
        if not np.all(y[: self.width] > 0):
            j = int(np.argmin(y[: self.width]))
            raise ValueError(f"gradient descent overshot: output weight a_{j} = {y[j]:.3g} <= 0 (the masses "
                             "a_j |w_j| / m must stay positive); lower method.dt")

    def _population(self, y: np.ndarray, at_target: bool = False):
        """The measure ``theta (m, d+1)``, ``weights (m,)``, the potential ``V (m,)`` at the neurons
        (and at teacher atoms, ``at_target``) and the population gradients ``dL/da``, ``dL/dw``."""
        net = self.network(y)
        theta, weights = net.measure()
        values, grad, *v_target = signed_potential(self.kernel, theta, weights, self.target,
                                                   at_target=at_target, summation=self.summation)
        return (theta, weights, values, *gradient_from_potential(net, theta, values, grad), *v_target)

    def rhs(self, t: float, y: np.ndarray) -> np.ndarray:
        """``-m grad L`` (population, or a minibatch estimate when ``batch`` is set).

        Raises
        ------
        ValueError
            When an output weight ``a_j`` has reached 0 (the step overshot): the measure's masses
            ``a_j |w_j| / m`` must stay positive. The driver ends the run as failed, data kept
            (:meth:`diagnostics` checks the same at every save).
        """
        self._check_outer_weights(y)
        if self.batch is None:
            grad_a, grad_w = self._population(y)[3:5]
        else:
            rng = np.random.default_rng([self.seed, round(t / self.dt)])
            inputs = sphere.sample_uniform(self.batch, self.kernel.dim, rng)
            grad_a, grad_w, _ = minibatch_gradient(self.network(y), self.target, inputs)
        return -self.width * np.concatenate([grad_a, grad_w.ravel()])

    def energy(self, y: np.ndarray) -> float:
        """The population loss ``L`` (closed form)."""
        return self.diagnostics(y)["energy"]

    def diagnostics(self, y: np.ndarray) -> dict[str, float]:
        """``energy`` (population loss), ``dissipation`` (``m |grad L|^2``), ``mass``."""
        self._check_outer_weights(y)
        theta, weights, values, grad_a, grad_w, v_target = self._population(y, at_target=True)
        loss = loss_from_potential(self.target, theta, weights, values, v_target)
        dissipation = self.width * (grad_a @ grad_a + np.sum(grad_w * grad_w))
        return {"energy": loss, "dissipation": float(dissipation), "mass": float(weights.sum())}

    def snapshot(self, y: np.ndarray) -> dict[str, np.ndarray]:
        """The network's measure: ``positions (m, d+1)`` unit vectors, ``weights (m,)``."""
        theta, weights = self.network(y).measure()
        return {"positions": theta, "weights": weights}
