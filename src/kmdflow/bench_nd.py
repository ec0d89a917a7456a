"""Benchmarks on ``T^d``: the NUFFT particle velocity, side by side with a direct Fourier sum.

Printed like :mod:`kmdflow.bench`; ``benchmarks/README.md`` records the numbers with the machine.
"""

from __future__ import annotations

import time

import numpy as np

from kmdflow.bench import best_time, fitted_exponent
from kmdflow.domains import torus


def bench_nufft_2d(quick: bool) -> dict:
    """Particle velocity on T^2 (s = 2, tol = 1e-6, uniform target): NUFFT vs direct truncated Fourier sum."""
    from kmdflow.summation.nufft_nd import (
        MEASURE_AFTER,
        TruncatedKernel,
        direct_fourier_force_nd,
    )

    s, tol = 2.0, 1e-6
    n_modes = 64 if quick else 256
    sizes = [10**4, 10**5] if quick else [10**4, 10**5, 10**6]
    direct_size = 2 * 10**3 if quick else 2 * 10**4
    rng = np.random.default_rng(0)

    def particles(n):
        return rng.uniform(0.0, torus.TWO_PI, size=(n, 2)), np.full(n, 1.0 / n)

    kernel = TruncatedKernel(s, 2, None, n_modes, tol)
    # a flow evaluates one kernel many times: warm it up as a run would (the FFTW plans are
    # measured once, after MEASURE_AFTER plan uses; the one-time cost is printed)
    x, w = particles(direct_size)
    start = time.perf_counter()
    for _ in range(MEASURE_AFTER // 2 + 1):
        kernel.velocity(x, w)
    warm_up = time.perf_counter() - start
    fixed = {}
    for n in sorted(set(sizes) | {direct_size}):
        x, w = particles(n)
        fixed[n] = best_time(lambda x=x, w=w: kernel.velocity(x, w))
    x, w = particles(direct_size)
    seconds_direct = best_time(lambda: direct_fourier_force_nd(kernel, x, w), repeat=1)
    v_direct = direct_fourier_force_nd(kernel, x, w)
    error = float(np.max(np.abs(kernel.velocity(x, w) - v_direct)) / np.max(np.abs(v_direct)))
    ratio = seconds_direct / fixed[direct_size]
    exponent = fitted_exponent(sizes, [fixed[n] for n in sizes])

    # K growing with N (K ~ sqrt(N) / 2: the resolved length follows the particle spacing)
    scaled = {}
    for n in sizes:
        k_n = max(8, round(np.sqrt(n) / 2))
        kernel_n = TruncatedKernel(s, 2, None, k_n, tol)
        x, w = particles(n)
        for _ in range(MEASURE_AFTER // 2 + 1):                 # warm up as above
            kernel_n.velocity(x[:1000], w[:1000])
        scaled[n] = (k_n, best_time(lambda kern=kernel_n, x=x, w=w: kern.velocity(x, w)))
    exponent_scaled = fitted_exponent(sizes, [scaled[n][1] for n in sizes])

    print(f"  d = 2, s = {s:g}, tol = {tol:g}, uniform target, random particles")
    print(f"    fixed K = {n_modes} (length scale 2 pi / K = {torus.TWO_PI / n_modes:.4f}); one-time warm-up "
          f"({MEASURE_AFTER // 2 + 1} evaluations incl. FFTW planning) {warm_up:.2f} s")
    for n in sorted(fixed):
        extra = f"   direct {seconds_direct:9.4f} s   ratio {ratio:8.0f}x   max rel. diff {error:.1e}" \
            if n == direct_size else ""
        print(f"    N = {n:>8d}   nufft {fixed[n]:9.4f} s{extra}")
    print(f"    fitted cost exponent over N = {sizes[0]:.0e}..{sizes[-1]:.0e}: {exponent:.3f} "
          f"(model N + K^2 log K: <= 1)")
    print("    K = sqrt(N) / 2")
    for n in sizes:
        print(f"    N = {n:>8d}   K = {scaled[n][0]:>5d}   nufft {scaled[n][1]:9.4f} s")
    print(f"    fitted cost exponent over N = {sizes[0]:.0e}..{sizes[-1]:.0e}: {exponent_scaled:.3f} "
          f"(model N log N: ~1)")
    return {"n_modes": n_modes, "warm_up": warm_up, "nufft": fixed, "direct": {direct_size: seconds_direct}, "ratio": ratio,
            "max_relative_difference": error, "exponent": exponent,
            "scaled": scaled, "exponent_scaled": exponent_scaled}


BENCHMARKS = {"nufft_2d": bench_nufft_2d}
