"""``kmdflow bench`` entry for ``summation="nufft"``: speed and accuracy against the direct sum.

Registered by :mod:`kmdflow.bench` (``BENCHMARKS["nufft_velocity"]``); printed in the style of
:func:`kmdflow.bench.bench_particle_velocity`.
"""

from __future__ import annotations

import os

import numpy as np

from kmdflow.domains import torus

__all__ = ["bench_nufft_velocity"]


def _bench_energy(kernel, tol: float, sizes, direct_size: int, rng) -> dict:
    """Particle energy (random weights, uniform target): ``nufft_energy`` vs the exact pair sum."""
    from kmdflow.bench import best_time, fitted_exponent
    from kmdflow.summation.energy import atomic_energy
    from kmdflow.summation.energy_nufft import nufft_energy

    times = {}
    for n in sorted(set(sizes) | {direct_size}):
        x = rng.uniform(0.0, torus.TWO_PI, n)
        w = rng.dirichlet(np.ones(n))
        nufft_energy(kernel, x, w, tol=tol)                       # design and tables, cached
        times[n] = best_time(lambda x=x, w=w: nufft_energy(kernel, x, w, tol=tol))
        if n == direct_size:
            exact = atomic_energy(kernel, x, w, background=1.0)
            direct_seconds = best_time(lambda x=x, w=w: atomic_energy(kernel, x, w, background=1.0),
                                       repeat=1)
            error = abs(nufft_energy(kernel, x, w, tol=tol) - exact) / exact
    exponent = fitted_exponent(sizes, [times[n] for n in sizes])
    ratio = direct_seconds / times[direct_size]
    line = "   ".join(f"N = {n:.0e}: {times[n]:.4f} s" for n in sorted(times))
    print(f"    energy (nufft_energy, tol {tol:g}): {line}")
    print(f"      vs exact pair sum at N = {direct_size}: {direct_seconds:.3f} s, ratio {ratio:.0f}x, "
          f"error / E {error:.1e}; fitted exponent {exponent:.3f}")
    return {"nufft": times, "direct": {direct_size: direct_seconds}, "ratio": ratio, "error": error,
            "exponent": exponent}


def bench_nufft_velocity(quick: bool) -> dict:
    """Particle velocity on T^1 via ``nufft`` (tol 1e-8) vs ``direct``, s = 1.25 and 1.5, uniform target."""
    from kmdflow.bench import best_time, fitted_exponent
    from kmdflow.kernels.sobolev import SobolevKernel
    from kmdflow.summation import direct_force
    from kmdflow.summation.nufft import nufft_force_report

    tol = 1e-8
    nufft_sizes = [10**4, 10**5, 10**6] if not quick else [10**4, 10**5]
    direct_size = 2 * 10**4 if not quick else 5 * 10**3
    rng = np.random.default_rng(0)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average before: {load:.2f} on {os.cpu_count()} cores; tol = {tol:g}")
    results = {"tol": tol, "load_before": load}
    for s in (1.25, 1.5):
        kernel = SobolevKernel(s)
        times, designs = {}, {}
        for n in sorted(set(nufft_sizes) | {direct_size}):
            x = rng.uniform(0.0, torus.TWO_PI, n)
            w = np.full(n, 1.0 / n)
            nufft_force_report(kernel, x, x, w, tol=tol)            # design and tables, cached
            times[n] = best_time(lambda k=kernel, x=x, w=w: nufft_force_report(k, x, x, w, tol=tol))
            designs[n] = nufft_force_report(kernel, x, x, w, tol=tol)[1]
            if n == direct_size:
                exact = direct_force(kernel, x, x, w)
                direct_seconds = best_time(lambda k=kernel, x=x, w=w: direct_force(k, x, x, w),
                                           repeat=1)
                force = nufft_force_report(kernel, x, x, w, tol=tol)[0]
                error = float(np.max(np.abs(force - exact)) / np.max(np.abs(exact)))
        exponent = fitted_exponent(nufft_sizes, [times[n] for n in nufft_sizes])
        ratio = direct_seconds / times[direct_size]
        print(f"  s = {s:g}")
        for n in sorted(times):
            report = designs[n]
            extra = (f"   direct {direct_seconds:9.4f} s   ratio {ratio:8.0f}x   max error / max|F| {error:.1e}"
                     if n == direct_size else "")
            print(f"    N = {n:>8d}   nufft {times[n]:9.4f} s   K = {report.design.n_modes:>8d}   "
                  f"near pairs {report.pairs:>9d}{extra}")
        print(f"    fitted cost exponent of nufft over N = {nufft_sizes[0]:.0e}..{nufft_sizes[-1]:.0e}: "
              f"{exponent:.3f}")
        energy = _bench_energy(kernel, tol, nufft_sizes, 5 * 10**3 if not quick else 2 * 10**3, rng)
        results[s] = {"nufft": times, "direct": {direct_size: direct_seconds}, "ratio": ratio,
                      "exponent": exponent, "error": error, "energy": energy}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"  load average after: {load:.2f}")
    results["load_after"] = load
    return results
