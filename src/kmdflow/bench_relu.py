"""``bench_relu``: speed of the ReLU / WFR particle velocities, measured side by side in one process.

Baselines: the dense ``O(m^2)`` sums (:func:`kmdflow.summation.relu.dense_potential`) for the
circle's sorted sums. Printed like :mod:`kmdflow.bench`; targets from issue 5 (reported, not
asserted): circle, ``m = 1e6``: one sorted WFR velocity ``<= 1 s``; sorted vs dense at
``m = 2e4``: ``>= 100x``; ``S^2``, ``m = 2e4``: one dense evaluation ``<= 2 s`` in ``<= 500 MB``.
"""

from __future__ import annotations

import time
import tracemalloc

import numpy as np

from kmdflow.bench import best_time, fitted_exponent


def _flow(dim: int, m: int, summation: str, seed: int = 0):
    from kmdflow.domains import sphere
    from kmdflow.flows.wfr import AtomMeasure, WFRParticleFlow
    from kmdflow.kernels.relu import ReluKernel

    teacher = AtomMeasure(sphere.sample_uniform(10, dim, seed + 1), np.full(10, 0.1))
    return WFRParticleFlow(ReluKernel(dim), sphere.sample_uniform(m, dim, seed), np.full(m, 1.0 / m), teacher,
                           summation=summation)


def _peak_bytes(fn) -> int:
    """Peak traced allocation (NumPy reports its buffers to ``tracemalloc``) during ``fn()``."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def bench_relu(quick: bool) -> dict:
    """WFR velocity of the ReLU loss: circle sorted vs dense, and dense sums on S^2."""
    results: dict = {}
    sizes = [10**4, 10**5, 10**6] if not quick else [10**4, 10**5]
    circle = {}
    for m in sizes:
        flow = _flow(1, m, "sorted")
        state = flow.initial_state()
        circle[m] = best_time(lambda flow=flow, state=state: flow.rhs(0.0, state))
    exponent = fitted_exponent(sizes, [circle[m] for m in sizes])
    print("  circle, teacher of 10 neurons, one WFR velocity (rhs) with sorted sums")
    for m, seconds in circle.items():
        print(f"    m = {m:>8d}   sorted {seconds:9.4f} s")
    print(f"    fitted cost exponent over m = {sizes[0]:.0e}..{sizes[-1]:.0e}: {exponent:.3f}")
    results["circle_sorted"] = {"seconds": circle, "exponent": exponent}

    m_cmp = 2 * 10**4 if not quick else 5 * 10**3
    flows = {name: _flow(1, m_cmp, name) for name in ("sorted", "dense")}
    y = flows["sorted"].initial_state()
    t_sorted = best_time(lambda: flows["sorted"].rhs(0.0, y))
    t_dense = best_time(lambda: flows["dense"].rhs(0.0, y), repeat=2)
    agreement = float(np.max(np.abs(flows["sorted"].rhs(0.0, y) - flows["dense"].rhs(0.0, y))))
    print(f"  circle, m = {m_cmp}: sorted {t_sorted:.4f} s, dense {t_dense:.3f} s, ratio {t_dense / t_sorted:.0f}x, "
          f"max |difference| {agreement:.1e}")
    results["circle_ratio"] = {"m": m_cmp, "sorted": t_sorted, "dense": t_dense, "ratio": t_dense / t_sorted,
                               "agreement": agreement}

    m_s2 = 2 * 10**4 if not quick else 5 * 10**3
    flow = _flow(2, m_s2, "dense")
    y = flow.initial_state()
    t_s2 = best_time(lambda: flow.rhs(0.0, y), repeat=2)
    peak = _peak_bytes(lambda: flow.rhs(0.0, y))
    start = time.perf_counter()
    flow.diagnostics(y)
    t_diag = time.perf_counter() - start
    print(f"  S^2, m = {m_s2}, dense: one velocity {t_s2:.3f} s, peak traced memory {peak / 2**20:.1f} MiB; "
          f"diagnostics (loss + dissipation) {t_diag:.3f} s")
    results["sphere_dense"] = {"m": m_s2, "seconds": t_s2, "peak_bytes": peak, "diagnostics_seconds": t_diag}
    return results


if __name__ == "__main__":  # pragma: no cover
    import sys

    bench_relu(quick="--quick" in sys.argv)
