"""``kmdflow bench``: sweep throughput on Dask distributed against one run after another."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

#: One small run (~1 s): spectral d = 1, n = 16, explicit Euler with a tiny fixed step.
SMALL_RUN = {"energy": {"s": 2.0}, "initial": {"kind": "mode", "k": 1, "amplitude": 0.3},
             "method": {"kind": "spectral", "n": 16, "integrator": "euler", "dt": 1e-4},
             "time": {"t_end": 1.0, "n_saves": 5, "spacing": "linear"}}


def bench_sweep(quick: bool) -> dict:
    """Sweep throughput: 16 small runs on a 2-worker LocalCluster vs a loop in this process."""
    from dask.distributed import Client, LocalCluster

    from kmdflow.experiments.sweep import load_sweep, run_one, run_sweep

    n_runs = 8 if quick else 16
    sweep = load_sweep({"base": SMALL_RUN,
                        "parameters": {"energy.s": [round(float(s), 4) for s in np.linspace(1.5, 3.0, n_runs)]}})
    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        root = Path(tmp)
        warm = load_sweep({"base": SMALL_RUN, "parameters": {"energy.s": [1.25, 1.75]}})
        run_sweep(warm, root / "warm", client=client)  # imports done on both workers
        run_one(warm.runs[0].config, root / "warm-here")  # and here
        start = time.perf_counter()
        for run in sweep.runs:
            run_one(run.config, root / "loop" / run.name)
        loop = time.perf_counter() - start
        start = time.perf_counter()
        run_sweep(sweep, root / "sweep", client=client)
        parallel = time.perf_counter() - start
    print(f"  {n_runs} runs of ~{loop / n_runs:.2f} s: one after another {loop:.2f} s, "
          f"2 Dask workers {parallel:.2f} s: ratio {loop / parallel:.2f}x")
    return {"loop": loop, "parallel": parallel, "ratio": loop / parallel}
