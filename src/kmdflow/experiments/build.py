"""From a validated config to a runnable problem: kernel, measures, flow, times.

Everything that can still be wrong with the input (unreadable files, a density that cannot be
normalised, a summation that cannot serve the kernel) is found here, before anything is written,
and raised as :class:`~kmdflow.experiments.config.ConfigError` naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import zeta

from kmdflow.diagnostics.regularity import estimate_regularity
from kmdflow.experiments.config import Config, ConfigError
from kmdflow.flows.particles import ParticleFlow1D, TargetSeries
from kmdflow.flows.particles_nd import ParticleFlowND
from kmdflow.flows.spectral import SpectralFlow1D
from kmdflow.flows.spectral_nd import SpectralFlowND
from kmdflow.integrators import SCHEMES
from kmdflow.kernels.sobolev import SobolevKernel
from kmdflow.measures import Atoms, MeasureError, make_measure, place_particles
from kmdflow.solve import save_times, snapshot_indices

#: The scheme ``integrator = "auto"`` stands for, per method: the spectral solver treats its stiff
#: linear part exactly (the step can grow with t); particles are not stiff for s >= 1.
AUTO_INTEGRATOR = {"spectral": "etdrk4", "particles": "dopri5"}

#: Fourier modes used to represent a density target seen by particles (cut by ``method.tol``).
TARGET_MODES = 1 << 16


@dataclass(frozen=True)
class Problem:
    """A run ready for :func:`kmdflow.solve.simulate`, plus what the summary reports about it."""

    config: Config
    kernel: SobolevKernel
    flow: object
    integrator: str
    times: np.ndarray
    snapshot_at: np.ndarray
    regularity: float | None
    min_density: float
    uniform_target: bool
    floor: float
    summation: str | None
    n_modes: int | None = None
    n_particles: int | None = None
    notes: tuple[str, ...] = ()
    #: how much slower than the Sobolev flow with the same ``s`` the linearised modes decay (the fit
    #: window of :func:`kmdflow.diagnostics.rates.fit_window` is stretched by it)
    time_scale: float = 1.0


def _measure(spec, key: str, base_dir, dim: int):
    try:
        return make_measure(spec.kind, spec.params, base_dir=base_dir, dim=dim)
    except MeasureError as err:
        raise ConfigError(f"{key}.{err.key}" if err.key else key, err.message) from None


def build_problem(config: Config) -> Problem:
    """Build the flow described by ``config``: the Sobolev kernel on T^d (d = 1, 2, 3), or the ReLU
    kernel on S^d (:mod:`kmdflow.experiments.build_sphere`)."""
    integrator = _integrator(config)
    if config.domain.kind == "sphere":
        from kmdflow.experiments.build_sphere import build_sphere_problem

        return build_sphere_problem(config, integrator)
    kernel = SobolevKernel(config.energy.s)
    dim = config.domain.dim
    initial = _measure(config.initial, "initial", config.source_dir, dim)
    target = _measure(config.target, "target", config.source_dir, dim)
    method = config.method
    uniform_target = config.target.kind == "uniform"
    if dim > 1:
        return _build_nd(config, kernel, initial, target, integrator)
    regularity = _regularity(initial, target)
    min_density = min(_inf(initial), _inf(target))
    floor = 0.0
    summation = None
    notes: tuple[str, ...] = ()
    if method.kind == "spectral":
        if isinstance(initial, Atoms) or isinstance(target, Atoms):
            which = "initial" if isinstance(initial, Atoms) else "target"
            raise ConfigError(f"{which}.kind", "the spectral method needs a density; use "
                              "method.kind = \"particles\" for atoms")
        modes = method.n // 2
        flow = SpectralFlow1D(kernel.multiplier, initial.fourier(modes), target.fourier(modes), method.n)
        notes += _truncation_notes(initial, target, modes)
    else:
        if kernel.s <= 0.5:
            raise ConfigError("energy.s", f"particles need s > 1/2 for a finite energy (got {kernel.s}); "
                              "use method.kind = \"spectral\"")
        if isinstance(initial, Atoms):
            atoms = initial
        else:
            atoms = place_particles(initial, method.n, method.placement, method.seed)
        # exact for a uniform target (MATH.md section 3); the scale of the plateau otherwise
        floor = float(zeta(2 * kernel.s) * atoms.positions.size ** (-2 * kernel.s))
        if isinstance(target, Atoms):
            target_term = (target.positions, target.weights)
        elif uniform_target:
            target_term = None
        else:
            target_term = TargetSeries(kernel.multiplier, target.fourier(TARGET_MODES), method.tol)
        try:
            flow = ParticleFlow1D(kernel, atoms.positions, atoms.weights, target_term, method.summation,
                                  method.tol)
        except ValueError as err:
            raise ConfigError("method.summation", str(err)) from None
        summation = flow.summation
        if isinstance(target_term, TargetSeries) and not (summation == "nufft" and not kernel.is_integer):
            # E = E(mu, 1) - <mu - 1, nu - 1> + E(nu, 1) cancels terms of size E(nu, 1): below
            # about 1e3 eps E(nu, 1) the energy is round-off, so fits stop there too (the NUFFT
            # energy of non-integer s sums |mu_hat - nu_hat|^2 directly and has no such floor)
            floor = max(floor, 1e3 * np.finfo(float).eps * target_term.self_energy)
    times = save_times(config.time.t_end, config.time.n_saves, config.time.spacing, config.time.t_first)
    return Problem(config, kernel, flow, integrator, times,
                   snapshot_indices(config.time.n_saves, config.output.snapshots),
                   regularity, min_density, uniform_target, floor, summation,
                   n_modes=method.n // 2 - 1 if method.kind == "spectral" else None,
                   n_particles=flow.weights.size if method.kind == "particles" else None, notes=notes)


def _integrator(config: Config) -> str:
    """The time scheme: ``"auto"`` resolved per domain and method, checked against the method."""
    from kmdflow.experiments.build_sphere import AUTO_SPHERE_INTEGRATOR

    method = config.method
    auto = AUTO_SPHERE_INTEGRATOR if config.domain.kind == "sphere" else AUTO_INTEGRATOR
    integrator = auto[method.kind] if method.integrator == "auto" else method.integrator
    if integrator not in SCHEMES:
        import difflib

        near = difflib.get_close_matches(integrator, SCHEMES, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ConfigError("method.integrator", f"unknown scheme {integrator!r}; {hint}choose one of "
                          f"{', '.join(['auto', *SCHEMES])}")
    if not SCHEMES[integrator].embedded and method.dt is None:
        if method.kind == "network":
            raise ConfigError("method.dt", "a network trains with a fixed learning rate (a step in "
                              "flow time); set method.dt, e.g. dt = 0.01")
        raise ConfigError("method.integrator", f"{integrator!r} has no error estimate; set method.dt "
                          "or use an adaptive scheme such as 'dopri5'")
    if method.kind != "spectral" and getattr(SCHEMES[integrator], "needs_linear", False):
        raise ConfigError("method.integrator", f"{integrator!r} is an exponential scheme for the "
                          f"spectral method; use 'dopri5' (or 'auto') with {method.kind}")
    return integrator


def _build_nd(config: Config, kernel: SobolevKernel, initial, target, integrator: str) -> Problem:
    """T^2 and T^3: spectral flow on an n^d grid, or particles with the spectrally truncated kernel."""
    method, dim = config.method, config.domain.dim
    if method.kind == "spectral":
        if isinstance(initial, Atoms) or isinstance(target, Atoms):
            which = "initial" if isinstance(initial, Atoms) else "target"
            raise ConfigError(f"{which}.kind", "the spectral method needs a density; use "
                              "method.kind = \"particles\" for atoms")
        flow = SpectralFlowND(kernel, initial.fourier_nd(method.n), target.fourier_nd(method.n),
                              method.n, dim)
        n_modes, n_particles, notes = method.n // 2 - 1, None, ()
    else:
        if method.summation not in ("auto", "nufft"):
            raise ConfigError("method.summation", f"{method.summation!r} works on the circle only; in "
                              f"d = {dim} particles use summation = \"nufft\" (or \"auto\")")
        atoms = initial if isinstance(initial, Atoms) else \
            place_particles(initial, method.n, method.placement, method.seed)
        n_modes = method.modes or max(8, round(atoms.positions.shape[0] ** (1 / dim) / 2))
        target_hat = None if config.target.kind == "uniform" else target.fourier_nd(2 * n_modes + 2)
        flow = ParticleFlowND(kernel, atoms.positions, atoms.weights, target_hat, n_modes=n_modes,
                              tol=method.tol)
        n_particles = atoms.positions.shape[0]
        notes = (f"particles in d = {dim} follow the flow of the kernel truncated at |k_i| <= {n_modes} "
                 f"(length scale {flow.length_scale:.3g}); set method.modes to change it",)
    regularity = None if isinstance(initial, Atoms) or isinstance(target, Atoms) else \
        _combined(initial.regularity(), target.regularity())
    min_density = min(_inf(initial), _inf(target))
    times = save_times(config.time.t_end, config.time.n_saves, config.time.spacing, config.time.t_first)
    return Problem(config, kernel, flow, integrator, times,
                   snapshot_indices(config.time.n_saves, config.output.snapshots), regularity,
                   min_density, config.target.kind == "uniform", 0.0,
                   "nufft" if method.kind == "particles" else None,
                   n_modes=n_modes, n_particles=n_particles, notes=notes)


def _combined(*regularities) -> float | None:
    return None if any(r is None for r in regularities) else min(regularities)


def _truncation_notes(initial, target, modes: int, reference_modes: int = 1 << 14) -> tuple[str, ...]:
    """What the grid changes about the data: dropped modes, a negative truncated density."""
    from kmdflow.measures.series import series_extrema

    notes = []
    for key, measure in (("initial", initial), ("target", target)):
        full = measure.fourier(max(reference_modes, 2 * modes))
        dropped = float(np.sum(np.abs(full[modes:]) ** 2) / np.sum(np.abs(full[1:]) ** 2)) \
            if np.any(full[1:]) else 0.0
        if dropped > 1e-20:
            notes.append(f"{key}: the grid keeps modes |k| < {modes}; {dropped:.2e} of the deviation's "
                         "L2 energy is dropped (raise method.n to keep it)")
            low = series_extrema(full[:modes], n_grid=8 * modes, n_candidates=4)[0]
            if low < 0:
                notes.append(f"{key}: the truncated density dips to {low:.3g} < 0 (Gibbs); for "
                             "discontinuous data use method.kind = \"particles\"")
    return tuple(notes)


def _regularity(initial, target, n_modes: int = 4096) -> float | None:
    """Sobolev regularity ``r`` of ``rho_0 - nu``: from the families when they know it, otherwise
    estimated from the Fourier decay of the difference (:func:`estimate_regularity`); ``None`` for atoms."""
    if isinstance(initial, Atoms) or isinstance(target, Atoms):
        return None
    values = [initial.regularity(), target.regularity()]
    if all(v is not None for v in values):
        return min(values)
    estimate = estimate_regularity(initial.fourier(n_modes) - target.fourier(n_modes))
    return estimate.regularity


def _inf(measure) -> float:
    if isinstance(measure, Atoms):
        return 0.0
    return float(measure.min_value())
