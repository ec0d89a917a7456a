"""From a validated sphere config to a runnable problem: ReLU kernel, teacher, WFR flow or network.

MATH.md section 6. The loss behaves like the Sobolev energy with ``s = (d + 3) / 2`` (the resolved
``energy.s``), so the rate prediction of :mod:`kmdflow.diagnostics.rates` applies with that ``s``; on
the circle near a uniform teacher the mode ``l`` decays at the rate ``(beta l^2 + alpha) k_hat(l)``
``~ (beta / pi^2) l^(2 - 2s)``, so the fit window of the Sobolev case is stretched in time by
``pi^2 / beta`` (:data:`Problem.time_scale`).
"""

from __future__ import annotations

import math

import numpy as np

from kmdflow.domains import sphere
from kmdflow.experiments.build import Problem
from kmdflow.experiments.build import _regularity as _circle_regularity
from kmdflow.experiments.config import Config, ConfigError
from kmdflow.flows.network import NetworkFlow
from kmdflow.flows.wfr import AtomMeasure, WFRParticleFlow
from kmdflow.flows.wfr_spectral import WFRSpectralFlow
from kmdflow.kernels.relu import CircleSeriesMeasure, ReluKernel, ZonalMeasure
from kmdflow.measures import MeasureError
from kmdflow.measures.analytic import Uniform, VonMises
from kmdflow.measures.sphere import (
    SphereAtoms,
    SphereDensity,
    place_on_sphere,
    sphere_measure,
)
from kmdflow.network import ShallowNetwork
from kmdflow.solve import save_times, snapshot_indices

#: The scheme ``integrator = "auto"`` stands for on the sphere, per method.
AUTO_SPHERE_INTEGRATOR = {"spectral": "etdrk4", "particles": "dopri5", "network": "euler"}

#: Fourier modes of a circle density seen by particles or a network (before the cut below).
TARGET_MODES = 1 << 12

#: Terms of the particle floor ``sum_{j >= 1} k_hat(j n)`` on the circle (tail ``< 1e-11`` of it).
FLOOR_TERMS = 10_000

#: A circle teacher's modes are kept while ``(1 + l) k_hat(l) |nu_hat(l)|`` (their share of ``V`` and
#: ``V'``) exceeds this.
TARGET_CUT = 1e-17


def _measure(spec, key: str, base_dir, dim: int):
    try:
        return sphere_measure(spec.kind, spec.params, base_dir=base_dir, dim=dim)
    except MeasureError as err:
        if spec.kind == "file":  # what is wrong is in the file the user named
            name = "weights_path" if err.key == "weights" and spec.params.get("weights_path") else "path"
            raise ConfigError(f"{key}.{name}", f"{spec.params[name]}: {err.message}") from None
        raise ConfigError(f"{key}.{err.key}" if err.key else key, err.message) from None


def relu_target(measure, kernel: ReluKernel):
    """The teacher as the WFR sums want it: ``ZonalMeasure`` (uniform, von Mises--Fisher),
    ``CircleSeriesMeasure`` (other circle densities) or ``AtomMeasure`` (teacher neurons)."""
    if isinstance(measure, SphereAtoms):
        return AtomMeasure(measure.points, measure.weights)
    if isinstance(measure, Uniform):
        return ZonalMeasure.uniform(kernel)
    if isinstance(measure, VonMises):
        direction = sphere.angles_to_points(np.array([measure.loc]))[0]
        return ZonalMeasure.von_mises_fisher(kernel, direction, measure.kappa)
    if isinstance(measure, SphereDensity):
        if measure.kappa == 0:
            return ZonalMeasure.uniform(kernel)
        return ZonalMeasure.von_mises_fisher(kernel, measure.direction, measure.kappa)
    coeffs = measure.fourier(TARGET_MODES)
    l = np.arange(coeffs.size)
    kept = np.nonzero((1 + l) * kernel.circle_multiplier(l) * np.abs(coeffs) > TARGET_CUT)[0]
    return CircleSeriesMeasure(kernel, coeffs[: int(kept[-1]) + 1])


def build_sphere_problem(config: Config, integrator: str) -> Problem:
    """Build the run a sphere config describes (``integrator`` already resolved and checked)."""
    dim, method, geometry = config.domain.dim, config.method, config.geometry
    kernel = ReluKernel(dim)
    initial = _measure(config.initial, "initial", config.source_dir, dim)
    target = _measure(config.target, "target", config.source_dir, dim)
    alpha, beta = (geometry.alpha, geometry.beta) if geometry.kind == "wfr" else (0.0, 1.0)
    # the sums of kmdflow.summation.relu: "sorted" on the circle, "dense" blocks ("direct") on S^d
    summation = "sorted" if method.summation == "auto" and dim == 1 else \
        "direct" if method.summation == "auto" else method.summation
    relu_summation = {"direct": "dense"}.get(summation, summation)
    n_modes = n_particles = None
    if method.kind == "spectral":
        if isinstance(target, SphereAtoms):
            raise ConfigError("target.kind", "the spectral method needs a density teacher; use "
                              "method.kind = \"particles\" for teacher neurons")
        n_modes = method.n // 2
        flow = WFRSpectralFlow(kernel, initial.fourier(n_modes), target.fourier(n_modes), method.n,
                               alpha=alpha, beta=beta)
        n_modes -= 1
        summation = None
    else:
        atoms = place_on_sphere(initial, method.n, method.placement, method.seed)
        n_particles = atoms.weights.size
        teacher = relu_target(target, kernel)
        if method.kind == "particles":
            flow = WFRParticleFlow(kernel, atoms.points, atoms.weights, teacher, alpha=alpha, beta=beta,
                                   summation=relu_summation)
        else:
            if method.batch is not None and integrator != "euler":
                raise ConfigError("method.integrator", "minibatch SGD (method.batch) is the explicit "
                                  "Euler scheme with step method.dt; use integrator = \"euler\" or "
                                  "\"auto\"", integrator)
            network = ShallowNetwork.from_measure(atoms.points, atoms.weights)
            flow = NetworkFlow(kernel, network, teacher, summation=relu_summation, batch=method.batch,
                               dt=method.dt, seed=method.seed)
    times = save_times(config.time.t_end, config.time.n_saves, config.time.spacing, config.time.t_first)
    notes: tuple[str, ...] = ()
    if method.kind == "network" and method.dt is not None:
        times, notes = _on_step_grid(times, method.dt)
    regularity = _regularity(initial, target)
    floor = 0.0
    if n_particles is not None and dim == 1:
        # the loss of n equispaced equal atoms against the uniform teacher, sum_{j >= 1} k_hat(j n)
        # (~ zeta(4) / (pi^2 n^4) for even n, 16 times less for odd n: k_hat = 0 on odd l >= 3);
        # the scale of the plateau for other teachers
        floor = float(kernel.circle_multiplier(n_particles * np.arange(1, FLOOR_TERMS)).sum())
    if dim == 1:
        notes += ("the loss cannot see odd harmonics >= 3 (the ReLU kernel's multiplier is 0 there): "
                  "it may converge while mu does not converge to nu",)
    return Problem(config, kernel, flow, integrator, times,
                   snapshot_indices(len(times), config.output.snapshots), regularity, 0.0,
                   config.target.kind == "uniform", floor, summation, n_modes=n_modes,
                   n_particles=n_particles, notes=notes,
                   time_scale=math.pi**2 / beta if dim == 1 else 1.0)


def _on_step_grid(times: np.ndarray, dt: float) -> tuple[np.ndarray, tuple[str, ...]]:
    """Save times moved onto multiples of the learning rate, so every step is a whole GD step."""
    steps = np.unique(np.maximum(np.round(times / dt), 0).astype(np.int64))
    if steps[-1] == 0:
        raise ConfigError("method.dt", f"is larger than time.t_end = {times[-1]:g}; the network would "
                          "take no step. Lower dt or raise t_end", dt)
    grid = steps * dt
    notes = ()
    if len(grid) < len(times) or abs(grid[-1] - times[-1]) > 1e-12 * times[-1]:
        notes = (f"network training takes whole steps of dt = {dt:g}: {len(grid)} save times on "
                 f"multiples of dt, the last at t = {grid[-1]:.6g}",)
    return grid, notes


def _regularity(initial, target) -> float | None:
    """Sobolev regularity of ``rho_0 - nu``: ``None`` with atoms; circle densities as on the torus."""
    if isinstance(initial, SphereAtoms) or isinstance(target, SphereAtoms):
        return None
    if isinstance(initial, SphereDensity) or isinstance(target, SphereDensity):
        return math.inf
    return _circle_regularity(initial, target)
