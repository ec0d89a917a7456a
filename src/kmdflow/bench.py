"""``kmdflow bench``: speed measured side by side in one process, against named baselines.

Each benchmark prints its timings and the ratio to its baseline; ``benchmarks/README.md`` records
the numbers with the machine they came from.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Callable

import numpy as np

from kmdflow.domains import torus


def best_time(fn: Callable[[], object], repeat: int = 3, budget: float = 20.0) -> float:
    """Best wall time of ``fn()`` over ``repeat`` calls (fewer if one call exceeds ``budget`` s)."""
    best = np.inf
    spent = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        if spent > budget:
            break
    return best


def fitted_exponent(sizes, seconds) -> float:
    """Slope of ``log(seconds)`` against ``log(size)``."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def bench_particle_velocity(quick: bool) -> dict:
    """Particle velocity on T^1 via ``sorted`` vs ``direct`` (s = 1 and s = 2), uniform target."""
    from kmdflow.kernels.sobolev import SobolevKernel
    from kmdflow.summation import pair_force

    sorted_sizes = [10**4, 10**5, 10**6] if not quick else [10**4, 10**5]
    direct_sizes = [10**4, 10**5] if not quick else [10**3, 10**4]
    rng = np.random.default_rng(0)
    results = {}
    for s in (1.0, 2.0):
        kernel = SobolevKernel(s)
        times_sorted, times_direct = {}, {}
        for n in sorted(set(sorted_sizes) | set(direct_sizes)):
            x = rng.uniform(0, torus.TWO_PI, n)
            w = np.full(n, 1.0 / n)
            times_sorted[n] = best_time(lambda: pair_force(kernel, x, x, w, method="sorted"))
            if n in direct_sizes:
                times_direct[n] = best_time(lambda: pair_force(kernel, x, x, w, method="direct"), repeat=1)
        exponent = fitted_exponent(sorted_sizes, [times_sorted[n] for n in sorted_sizes])
        largest_direct = max(direct_sizes)
        ratio = times_direct[largest_direct] / times_sorted[largest_direct]
        print(f"  s = {s:g}")
        for n in sorted(times_sorted):
            extra = f"   direct {times_direct[n]:9.4f} s   ratio {times_direct[n] / times_sorted[n]:8.0f}x" \
                if n in times_direct else ""
            print(f"    N = {n:>8d}   sorted {times_sorted[n]:9.4f} s{extra}")
        print(f"    fitted cost exponent of sorted over N = {sorted_sizes[0]:.0e}..{sorted_sizes[-1]:.0e}: "
              f"{exponent:.3f}")
        results[s] = {"sorted": times_sorted, "direct": times_direct, "exponent": exponent, "ratio": ratio}
    return results


def bench_full_pde_run(quick: bool) -> dict:
    """A full run: s = 2 spectral PDE, n = 1024, t_end = 100, rtol 1e-8, with dopri5 and etdrk4."""
    from kmdflow.experiments.run import run_config

    n, t_end = (1024, 100.0) if not quick else (256, 20.0)
    results = {}
    for integrator in ("dopri5", "etdrk4"):
        ds = run_config({
            "energy": {"s": 2.0},
            "initial": {"kind": "perturbation", "amplitude": 0.05, "decay": 2.0, "seed": 0},
            "method": {"kind": "spectral", "n": n, "integrator": integrator},
            "time": {"t_end": t_end, "rtol": 1e-8, "n_saves": 50},
        })
        print(f"  spectral s = 2, n = {n}, t_end = {t_end:g}, rtol 1e-8, {integrator:>7}: "
              f"{ds.attrs['wall_seconds']:.2f} s, {ds.attrs['steps']} steps, "
              f"{ds.attrs['rejected_steps']} rejected, final energy {float(ds['energy'][-1]):.8e}")
        results[integrator] = {"wall_seconds": ds.attrs["wall_seconds"], "steps": ds.attrs["steps"]}
    return results


def bench_etd_vs_solve_ivp(quick: bool) -> dict:
    """Long spectral run: adaptive ETD (etdrk4, etdrk43) vs scipy.integrate.solve_ivp(RK45), same semi-discretisation.

    Both sides integrate one ``SpectralFlow1D`` (ETD: ``linear`` exactly and ``nonlinear``
    explicitly, mode-wise error control as in every spectral run; RK45: ``rhs = linear * y +
    nonlinear``) from the same state to the same horizon at rtol 1e-8, and are timed over the
    integration alone: the :class:`kmdflow.integrators.Stepper` loop against ``solve_ivp``. The
    full driver (:func:`kmdflow.solve.simulate`, which adds the diagnostics at t = 0 and t_end)
    is timed as well. Each ETD figure is the median of three runs, each from an empty
    coefficient cache (no phi-functions carried over from the run before); RK45 runs once.
    ``etdrk4`` (two half steps and a quadrature check) is the default; ``etdrk43`` (one step,
    embedded FSAL estimate, a documented blind spot: :mod:`kmdflow.integrators.exponential`) is
    shown for comparison.
    """
    import scipy.integrate

    from kmdflow.experiments.build import build_problem
    from kmdflow.experiments.config import load_config
    from kmdflow.integrators import SCHEMES, make_stepper
    from kmdflow.solve import simulate

    n, t_end = (1024, 1e5) if not quick else (256, 1e4)
    config = load_config({
        "energy": {"s": 2.0},
        "initial": {"kind": "perturbation", "amplitude": 0.05, "decay": 2.0, "seed": 0, "modes": n // 2 - 1},
        "method": {"kind": "spectral", "n": n, "integrator": "etdrk4"},
        "time": {"t_end": t_end, "rtol": 1e-8},
    })
    flow = build_problem(config).flow
    default, embedded = "etdrk4", "etdrk43"

    def etd(integrator, horizon):
        """Median seconds of the stepper loop, steps, rhs evaluations, final energy."""
        seconds = []
        for _ in range(3):
            SCHEMES[integrator].cache.clear()
            start = time.perf_counter()
            stepper = make_stepper(integrator, flow.nonlinear, linear=flow.linear, rtol=1e-8,
                                   norm=flow.error_norm)
            t, y = 0.0, flow.initial_state()
            while True:
                t, y, info = stepper.step(t, y, horizon - t)
                if info["clipped"]:
                    break
            seconds.append(time.perf_counter() - start)
        return float(np.median(seconds)), stepper.n_accepted, stepper.n_rhs, flow.energy(y)

    def driver(integrator, horizon):
        """Median seconds of the whole :func:`simulate` call, and its final energy."""
        seconds = []
        for _ in range(3):
            SCHEMES[integrator].cache.clear()
            start = time.perf_counter()
            traj = simulate(flow, integrator=integrator, times=np.array([0.0, horizon]),
                            snapshot_at=np.array([1]), rtol=1e-8)
            seconds.append(time.perf_counter() - start)
        return float(np.median(seconds)), traj.series["energy"][-1]

    def baseline(horizon):
        # componentwise rtol with a negligible atol: RK45's steps are held by stability, not accuracy
        start = time.perf_counter()
        sol = scipy.integrate.solve_ivp(flow.rhs, (0.0, horizon), flow.initial_state(), method="RK45",
                                        rtol=1e-8, atol=1e-30, t_eval=[horizon])
        return time.perf_counter() - start, sol.nfev, flow.energy(sol.y[:, -1])

    runs = {name: etd(name, t_end) for name in (default, embedded)}
    drivers = {name: driver(name, t_end) for name in (default, embedded)}
    horizons = {name: {h: etd(name, h) for h in (1e6, 1e8)} for name in (default, embedded)} \
        if not quick else {}
    ivp_seconds, ivp_nfev, ivp_energy = baseline(t_end)

    print(f"  s = 2, n = {n}, perturbation a = 2, amplitude 0.05, rtol 1e-8, t_end = {t_end:g}")
    print(f"    solve_ivp RK45    {ivp_seconds:8.3f} s  {ivp_nfev:7d} rhs evaluations              "
          f"E = {ivp_energy:.10e}")
    for name, (seconds, steps, n_rhs, energy) in runs.items():
        print(f"    {name:<8} loop     {seconds:7.3f} s  {steps:5d} steps, {n_rhs:5d} rhs evaluations  "
              f"E = {energy:.10e}  agrees to {abs(energy - ivp_energy) / ivp_energy:.1e}  "
              f"ratio {ivp_seconds / seconds:.0f}x")
    for name, (seconds, energy) in drivers.items():
        print(f"    {name:<8} simulate {seconds:7.3f} s  (the driver: diagnostics at t = 0 and t_end)  "
              f"ratio {ivp_seconds / seconds:.0f}x")
    for name, by_horizon in horizons.items():
        for horizon, (seconds, steps, _, energy) in by_horizon.items():
            print(f"    {name} to t = {horizon:.0e}: {seconds:.3f} s, {steps} steps, E = {energy:.4e}"
                  + ("  (underflows double precision)" if energy == 0 else ""))
    etd_seconds, _, _, etd_energy = runs[default]
    agreement = abs(ivp_energy - etd_energy) / ivp_energy
    print(f"    {default} (the default for spectral runs): energies agree to {agreement:.2e}, "
          f"wall-time ratio {ivp_seconds / etd_seconds:.0f}x; {embedded}: "
          f"{abs(ivp_energy - runs[embedded][3]) / ivp_energy:.2e}, "
          f"{ivp_seconds / runs[embedded][0]:.0f}x")
    if not quick:
        seconds, nfev, energy = baseline(1e6)
        for name in (default, embedded):
            etd_long = horizons[name][1e6]
            print(f"    to t = 1e6: solve_ivp RK45 {seconds:.1f} s ({nfev} rhs evaluations) vs {name} "
                  f"{etd_long[0]:.3f} s: ratio {seconds / etd_long[0]:.0f}x, energies agree to "
                  f"{abs(energy - etd_long[3]) / energy:.1e}")
    return {"etd_seconds": etd_seconds, "ivp_seconds": ivp_seconds, "ratio": ivp_seconds / etd_seconds,
            "agreement": agreement, "ratios": {name: ivp_seconds / run[0] for name, run in runs.items()},
            "runs": runs, "simulate": drivers, "horizons": horizons}


BENCHMARKS = {
    "particle_velocity": bench_particle_velocity,
    "full_pde_run": bench_full_pde_run,
    "etd_vs_solve_ivp": bench_etd_vs_solve_ivp,
}


def _all_benchmarks() -> dict:
    from kmdflow import bench_nd
    from kmdflow.bench_nufft import bench_nufft_velocity
    from kmdflow.bench_relu import bench_relu
    from kmdflow.bench_sweep import bench_sweep

    return {**BENCHMARKS, "nufft_velocity": bench_nufft_velocity, **bench_nd.BENCHMARKS, "relu_wfr": bench_relu,
            "sweep": bench_sweep}


def run_benchmarks(quick: bool = False) -> dict:
    """Run every benchmark and print the results; returns them."""
    print(f"kmdflow bench{' --quick' if quick else ''} on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}")
    results = {}
    for name, fn in _all_benchmarks().items():
        print(f"[{name}] {fn.__doc__.splitlines()[0]}")
        results[name] = fn(quick)
    return results
