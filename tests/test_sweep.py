"""Tests of ``kmdflow sweep``: the SWEEP.toml format, expansion, and runs on a real Dask cluster.

The cluster tests use a ``LocalCluster`` of 2 worker processes (as CI has 2 cores) and tiny runs
(spectral, n = 16, fixed-step Euler). Expected values come from outside the sweep machinery: the
configs and hashes are rebuilt here from the base and the swept values, the results of a run are
compared with the same config run in this process, and the tables are compared with the files
the runs wrote.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import os
import signal
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from kmdflow.cli import main
from kmdflow.experiments.config import ConfigError, load_config
from kmdflow.experiments.run import run_config
from kmdflow.experiments.sweep import (
    expand_parameters,
    load_sweep,
    run_one,
    run_sweep,
    sweep_dataset,
)

BASE = {
    "initial": {"kind": "perturbation", "amplitude": 0.1, "decay": 2.0, "seed": 0},
    "method": {"kind": "spectral", "n": 16, "integrator": "euler", "dt": 0.01},
    "time": {"t_end": 1.0, "n_saves": 5},
    "output": {"snapshots": 2},
}
BASE_TOML = """[base]
initial = {kind = "perturbation", amplitude = 0.1, decay = 2.0, seed = 0}
method = {kind = "spectral", n = 16, integrator = "euler", dt = 0.01}
time = {t_end = 1.0, n_saves = 5}
output = {snapshots = 2}
"""
# 8 runs side by side; the last one takes Euler steps of 100 over [0, 1000] and blows up
EIGHT = {
    "energy.s": [1.5, 2.0, 2.5, 3.0, 1.5, 2.0, 2.5, 3.0],
    "initial.amplitude": [0.1, 0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2],
    "method.dt": [0.01] * 7 + [100.0],
    "time.t_end": [1.0] * 7 + [1000.0],
}


def sweep_text(parameters: dict, mode: str = "zip", base: str = BASE_TOML) -> str:
    lines = [base, "[parameters]"]
    lines += [f'"{key}" = {json.dumps(values)}' for key, values in parameters.items()]
    return "\n".join(lines + ["", "[sweep]", f'mode = "{mode}"', ""])


def expected_config(values: dict, base: dict = BASE):
    """The config of one run, built here from the base and the values (dotted keys)."""
    raw = copy.deepcopy(base)
    for key, value in values.items():
        table, name = key.split(".")
        raw.setdefault(table, {})[name] = value
    return load_config(raw)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def cli(capsys, *args) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture(scope="module")
def client():
    """A real cluster: 2 worker processes, 1 thread each (what ``--workers 2`` starts)."""
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                           scheduler_kwargs={"dashboard_address": ":0"}, silence_logs=logging.CRITICAL)
    with Client(cluster, set_as_default=False) as c:
        yield c
    cluster.close()


# ------------------------------------------------------------------------------------------
# The file format and the expansion (no cluster)


def test_product_expands_every_combination_first_key_slowest():
    params = {"energy.s": [1.5, 2.0, 3.0], "initial.decay": [1.5, 2.0]}
    combos = expand_parameters(params, "product")
    assert [(c["energy.s"], c["initial.decay"]) for c in combos] == list(
        itertools.product([1.5, 2.0, 3.0], [1.5, 2.0]))
    assert len(combos) == 6


def test_zip_takes_lists_side_by_side_and_needs_equal_lengths():
    combos = expand_parameters({"energy.s": [1.5, 2.0], "initial.decay": [2.5, 3.0]}, "zip")
    assert combos == [{"energy.s": 1.5, "initial.decay": 2.5}, {"energy.s": 2.0, "initial.decay": 3.0}]
    with pytest.raises(ConfigError, match=r'parameters\."initial\.decay": has 1 values but .* 2'):
        expand_parameters({"energy.s": [1.5, 2.0], "initial.decay": [2.5]}, "zip")


def test_load_sweep_builds_each_config_and_names_its_directory(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text({"energy.s": [1.5, 2.0, 3.0], "initial.decay": [1.5, 2.0]}, "product"))
    sweep = load_sweep(path)
    assert len(sweep.runs) == 6
    for index, (s, decay) in enumerate(itertools.product([1.5, 2.0, 3.0], [1.5, 2.0])):
        run = sweep.runs[index]
        expected = expected_config({"energy.s": s, "initial.decay": decay})
        assert run.index == index and run.values == {"energy.s": s, "initial.decay": decay}
        assert run.config == expected and run.config_hash == expected.hash()
        assert run.name == f"run-{index:04d}-{expected.hash()[:8]}"
    assert len({run.name for run in sweep.runs}) == 6


def test_unquoted_dotted_keys_and_whole_tables_are_parameters(tmp_path):
    quoted = tmp_path / "quoted.toml"
    quoted.write_text(sweep_text({"energy.s": [1.5, 2.0]}))
    bare = tmp_path / "bare.toml"
    bare.write_text(BASE_TOML + "[parameters]\nenergy.s = [1.5, 2.0]\n")
    assert [r.config for r in load_sweep(bare).runs] == [r.config for r in load_sweep(quoted).runs]
    tables = tmp_path / "tables.toml"
    tables.write_text(BASE_TOML + "[parameters]\n"
                      'initial = [{kind = "mode", k = 1}, {kind = "mode", k = 3}]\n')
    runs = load_sweep(tables).runs
    assert [run.config.initial.kind for run in runs] == ["mode", "mode"]
    assert [run.config.initial.params["k"] for run in runs] == [1, 3]


def test_base_file_paths_start_at_the_base_file(tmp_path):
    sub = tmp_path / "configs"
    sub.mkdir()
    rho = 1.0 + 0.2 * np.cos(np.arange(16) * 2 * np.pi / 16)
    np.save(sub / "rho.npy", rho)
    (sub / "base.toml").write_text('[initial]\nkind = "file"\npath = "rho.npy"\n'
                                   "[method]\nn = 16\n[time]\nt_end = 1.0\nn_saves = 5\n")
    path = tmp_path / "sweep.toml"
    path.write_text('base = "configs/base.toml"\n[parameters]\n"energy.s" = [1.5, 2.5]\n')
    sweep = load_sweep(path)
    assert [run.config.initial.params["path"] for run in sweep.runs] == [str((sub / "rho.npy").resolve())] * 2
    assert [run.config.energy.s for run in sweep.runs] == [1.5, 2.5]


def test_expanded_sweep_toml_is_a_faithful_record(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text(EIGHT))
    sweep = load_sweep(path)
    record = tomllib.loads(sweep.to_toml())
    assert record["sweep"]["mode"] == "zip" and record["sweep"]["n_runs"] == 8
    assert record["parameters"] == EIGHT and record["base"] == BASE
    for i, entry in enumerate(record["runs"]):
        values = {key: EIGHT[key][i] for key in EIGHT}
        assert entry["values"] == values
        assert entry["config_hash"] == expected_config(values).hash()


# (id, sweep file text, what the error line names)
BAD_SWEEPS = [
    ("malformed_toml", BASE_TOML + '[parameters\n"energy.s" = [1.5]\n', "sweep.toml"),
    ("unknown_parameter_key", sweep_text({"energy.ss": [1.5, 2.0]}), 'parameters."energy.ss"'),
    ("unknown_parameter_table", sweep_text({"enrgy.s": [1.5, 2.0]}), 'parameters."enrgy.s"'),
    ("too_deep", sweep_text({"initial.components.weight": [1.0]}), 'parameters."initial.components.weight"'),
    ("zip_length_mismatch", sweep_text({"energy.s": [1.5, 2.0], "initial.decay": [2.0]}),
     'parameters."initial.decay"'),
    ("empty_list", sweep_text({"energy.s": []}), 'parameters."energy.s"'),
    ("not_a_list", BASE_TOML + '[parameters]\n"energy.s" = 2.0\n', 'parameters."energy.s"'),
    ("value_fails_validation", sweep_text({"energy.s": [2.0, -1.0]}), "run 1 (energy.s = -1.0): energy.s"),
    ("value_fails_when_built", sweep_text({"method.integrator": ["euler", "eulr"]}),
     'run 1 (method.integrator = "eulr"): method.integrator'),
    ("duplicate_runs", sweep_text({"energy.s": [2.0, 2]}), "runs 0"),
    ("unknown_mode", sweep_text({"energy.s": [2.0]}, mode="cartesian"), "sweep.mode"),
    ("unknown_table", sweep_text({"energy.s": [2.0]}) + "[sweeep]\n", "sweeep"),
    ("missing_base", '[parameters]\n"energy.s" = [2.0]\n', "base"),
    ("missing_parameters", BASE_TOML, "parameters"),
    ("missing_base_file", 'base = "nope.toml"\n[parameters]\n"energy.s" = [2.0]\n', "base"),
]


@pytest.mark.parametrize("case, text, needle", BAD_SWEEPS, ids=[c[0] for c in BAD_SWEEPS])
def test_bad_sweep_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case, text, needle):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    code, out, err = cli(capsys, "sweep", path, "--out", tmp_path / "out", "--workers", "2")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.toml"]


def test_out_holding_something_else_is_refused(tmp_path, capsys):
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text({"energy.s": [2.0]}))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    code, _, err = cli(capsys, "sweep", path, "--out", tmp_path / "out")
    assert code == 2 and "--out" in err and "holds no earlier sweep" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]
    # the sweep file itself inside DIR is not mistaken for the record of an earlier sweep
    inside = tmp_path / "out" / "sweep.toml"
    inside.write_text(path.read_text())
    code, _, err = cli(capsys, "sweep", inside, "--out", tmp_path / "out")
    assert code == 2 and "a sweep.toml that kmdflow did not write" in err
    assert inside.read_text() == path.read_text()


def test_unreachable_scheduler_is_bad_input_and_writes_nothing(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text({"energy.s": [2.0]}))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"^--scheduler: cannot connect to 'tcp://127\.0\.0\.1:9'"):
        run_sweep(load_sweep(path), tmp_path / "out", scheduler="tcp://127.0.0.1:9", connect_timeout=1.0)
    assert time.perf_counter() - start < 15
    assert not (tmp_path / "out").exists()


def test_run_one_records_a_failure_and_an_exception(tmp_path):
    good = expected_config({"energy.s": 2.0})
    row = run_one(good, tmp_path / "good")
    reference = run_config(good, None)
    assert row["status"] == "completed"
    assert row["final_energy"] == pytest.approx(float(reference["energy"][-1]), rel=1e-12)
    assert row["predicted_rate"] == pytest.approx(reference.attrs["predicted_rate"], rel=1e-12)
    bad = expected_config({"method.dt": 100.0, "time.t_end": 1000.0, "energy.s": 1.5})
    row = run_one(bad, tmp_path / "bad")
    assert row["status"].startswith("failed: ") and "density" in row["status"]
    # an exception inside the run: the initial density file disappears after validation
    np.save(tmp_path / "rho.npy", np.full(16, 1.0))
    raw = copy.deepcopy(BASE)
    raw["initial"] = {"kind": "file", "path": str(tmp_path / "rho.npy")}
    config = load_config(raw)
    (tmp_path / "rho.npy").unlink()
    row = run_one(config, tmp_path / "gone")
    assert row["status"].startswith("failed: ") and np.isnan(row["final_energy"])
    assert "Traceback" in (tmp_path / "gone" / "error.txt").read_text()


def test_table_columns_keep_their_types():
    rows = [{"index": i, "run_dir": f"run-{i}", "energy.s": s, "method.n": n, "method.integrator": m,
             "initial.k": k, "status": "completed", "fitted_rate": f, "predicted_rate": -3.5,
             "predicted_rate_kind": "power", "final_energy": 1e-3, "wall_seconds": 0.1,
             "config_hash": "ab", "reused": i == 1}
            for i, (s, n, m, k, f) in enumerate([(1.5, 16, "euler", [1, 0], np.nan),
                                                  (2, 32, "rk4", [1, 1], -3.4)])]
    ds = sweep_dataset(rows, ["energy.s", "method.n", "method.integrator", "initial.k"])
    assert ds["energy.s"].dtype == np.float64 and list(ds["energy.s"].values) == [1.5, 2.0]
    assert ds["method.n"].dtype == np.int64 and list(ds["method.n"].values) == [16, 32]
    assert list(ds["method.integrator"].values) == ["euler", "rk4"]
    assert list(ds["initial.k"].values) == ["[1, 0]", "[1, 1]"]
    assert np.isnan(ds["fitted_rate"].values[0]) and ds["fitted_rate"].values[1] == -3.4
    assert list(ds["reused"].values) == [0, 1] and list(ds["run"].values) == [0, 1]


# ------------------------------------------------------------------------------------------
# A real LocalCluster


def check_tables(out: Path, parameters: dict, n_failed_at: set[int]) -> list[dict]:
    """sweep.csv and sweep.nc agree with each other, with the run directories and with configs
    rebuilt here; the rows listed in ``n_failed_at`` failed, the others completed."""
    rows = read_csv(out / "sweep.csv")
    n = len(next(iter(parameters.values())))
    assert [int(r["index"]) for r in rows] == list(range(n))
    with xr.open_dataset(out / "sweep.nc", engine="h5netcdf") as ds:
        ds = ds.load()
    assert ds.sizes["run"] == n
    for i, row in enumerate(rows):
        values = {key: parameters[key][i] for key in parameters}
        config = expected_config(values)
        assert row["run_dir"] == f"run-{i:04d}-{config.hash()[:8]}" and row["config_hash"] == config.hash()
        for key, value in values.items():
            assert float(row[key]) == value and float(ds[key].values[i]) == value
        assert ds["status"].values[i] == row["status"] and ds["run_dir"].values[i] == row["run_dir"]
        summary = json.loads((out / row["run_dir"] / "summary.json").read_text())
        assert summary["config_hash"] == config.hash() and summary["status"] == row["status"]
        with xr.open_dataset(out / row["run_dir"] / "result.nc", engine="h5netcdf") as result:
            last_energy = float(result["energy"].values[-1])
        assert float(row["final_energy"]) == pytest.approx(last_energy, rel=1e-12)
        assert ds["final_energy"].values[i] == pytest.approx(last_energy, rel=1e-12)
        if i in n_failed_at:
            assert row["status"].startswith("failed: ")
        else:
            assert row["status"] == "completed"
            assert float(row["predicted_rate"]) == pytest.approx(summary["predicted_rate"]["value"])
    return rows


def summary_times(out: Path, rows: list[dict]) -> dict[str, int]:
    return {r["run_dir"]: (out / r["run_dir"] / "summary.json").stat().st_mtime_ns for r in rows}


def test_sweep_isolates_a_failure_and_reruns_only_what_is_not_completed(tmp_path, capsys, client):
    path = tmp_path / "sweep.toml"
    path.write_text(sweep_text(EIGHT))
    out = tmp_path / "out"

    # 1. the CLI with its own LocalCluster of 2 workers: 7 completed, 1 failed -> exit 3
    code, stdout, err = cli(capsys, "sweep", path, "--out", out, "--workers", "2")
    assert code == 3, err
    assert "7 of 8 runs completed (8 run now, 0 reused)" in stdout
    failed_lines = [line for line in err.splitlines() if line.startswith("failed: ")]
    assert len(failed_lines) == 1
    assert "run-0007-" in failed_lines[0] and "method.dt = 100.0" in failed_lines[0]
    assert err.strip().splitlines()[-1].startswith("error: 1 of 8 runs failed")
    assert len([line for line in err.splitlines() if line.startswith("[")]) == 8  # a line per run
    rows = check_tables(out, EIGHT, {7})
    assert {r["reused"] for r in rows} == {"0"}
    # the cluster's result is the result of the same config run here
    here = run_config(expected_config({key: EIGHT[key][2] for key in EIGHT}), None)
    assert float(rows[2]["final_energy"]) == pytest.approx(float(here["energy"][-1]), rel=1e-12)
    assert tomllib.loads((out / "sweep.toml").read_text())["sweep"]["n_runs"] == 8
    before = summary_times(out, rows)

    # 2. a rerun reuses the 7 completed runs and retries the failed one (which fails again)
    result = run_sweep(load_sweep(path), out, client=client)
    assert result.started == 1 and result.reused == 7 and len(result.failed) == 1
    rows = check_tables(out, EIGHT, {7})
    assert [r["reused"] for r in rows] == ["1"] * 7 + ["0"]
    after = summary_times(out, rows)
    assert all(after[name] == before[name] for name in list(before)[:7])
    assert after[rows[7]["run_dir"]] > before[rows[7]["run_dir"]]

    # 3. retry_failed=False keeps the failed row: nothing starts (no cluster needed)
    result = run_sweep(load_sweep(path), out, retry_failed=False)
    assert result.started == 0 and len(result.failed) == 1

    # 4. the failed run fixed in the file: a new config, a new directory; only it runs
    fixed = {**EIGHT, "method.dt": [0.01] * 8, "time.t_end": [1.0] * 8}
    path.write_text(sweep_text(fixed))
    result = run_sweep(load_sweep(path), out, client=client)
    assert result.started == 1 and result.all_completed
    rows = check_tables(out, fixed, set())

    # 5. a sweep with no failures: the rerun starts 0 runs and touches no run
    before = summary_times(out, rows)
    code, stdout, err = cli(capsys, "sweep", path, "--out", out)
    assert code == 0, err
    assert "8 of 8 runs completed (0 run now, 8 reused)" in stdout
    assert summary_times(out, check_tables(out, fixed, set())) == before


def test_a_killed_worker_process_has_its_run_retried(tmp_path, client):
    # four runs of 0.2 to 2 s (fixed Euler steps), so that runs are in flight when one ends
    parameters = {"energy.s": [1.5, 2.0, 2.5, 3.0], "method.dt": [2e-3, 2.5e-5, 2.5e-5, 2.5e-5]}
    sweep = load_sweep({"base": BASE, "parameters": parameters, "sweep": {"mode": "zip"}})
    out = tmp_path / "out"
    pids_before = set(client.run(os.getpid).values())
    killed: dict = {}

    def kill_a_busy_worker(row, done, total):
        """After a run ends: SIGKILL a worker process that is in the middle of a run."""
        if killed:
            return
        for address, keys in client.processing().items():
            names = ["-".join(str(key).split("-")[1:4]) for key in keys]
            in_flight = [name for name in names if (out / name).is_dir()
                         and not (out / name / "summary.json").exists()]
            if in_flight:
                pid = client.run(os.getpid, workers=[address])[address]
                os.kill(pid, signal.SIGKILL)
                killed.update(pid=pid, runs=in_flight)
                return

    result = run_sweep(sweep, out, client=client, progress=kill_a_busy_worker)
    assert killed, "no run was in flight when the first one ended"
    assert killed["pid"] in pids_before
    assert result.started == 4 and result.all_completed
    assert len(result.rows) == 4 and all(row["status"] == "completed" for row in result.rows)
    for name in killed["runs"]:  # the interrupted run was done again, to the end
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["final_time"] == 1.0
    deadline = time.monotonic() + 30  # the nanny restarts the killed worker
    while len(client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert killed["pid"] not in set(client.run(os.getpid).values())


@pytest.mark.slow
def test_throughput_of_two_workers_against_a_loop(tmp_path, client):
    """16 runs of ~0.6 s: in-process loop vs the sweep on 2 worker processes (printed ratio)."""
    s_values = [round(float(s), 4) for s in np.linspace(1.5, 3.0, 16)]
    sweep = load_sweep({"base": {**BASE, "method": {**BASE["method"], "dt": 1e-4}},
                        "parameters": {"energy.s": s_values}})
    warm = load_sweep({"base": BASE, "parameters": {"energy.s": [1.5, 2.0]}})
    run_sweep(warm, tmp_path / "warm", client=client)  # imports done on both workers
    run_one(warm.runs[0].config, tmp_path / "warm-here")  # and here
    start = time.perf_counter()
    for run in sweep.runs:
        assert run_one(run.config, tmp_path / "loop" / run.name)["status"] == "completed"
    loop = time.perf_counter() - start
    start = time.perf_counter()
    assert run_sweep(sweep, tmp_path / "warm-cluster", client=client).all_completed
    parallel = time.perf_counter() - start
    start = time.perf_counter()
    assert run_sweep(sweep, tmp_path / "new-cluster", workers=2).all_completed
    cold = time.perf_counter() - start
    print(f"\n16 runs: loop {loop:.2f} s, 2 workers {parallel:.2f} s (ratio {loop / parallel:.2f}x); "
          f"with a new LocalCluster {cold:.2f} s (ratio {loop / cold:.2f}x)")
    assert loop / parallel >= 1.6
