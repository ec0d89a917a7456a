"""Tests of the ``kmdflow`` command line: exit codes, one-line errors, dispatch, nothing written.

Most calls go through :func:`kmdflow.cli.main` in-process; a few through
``python -m kmdflow`` in a subprocess. The numerical commands are exercised against the
documented interfaces with stand-in modules (``run_config``, ``plot_run``, ``reproduce``,
``run_benchmarks``), so these tests check the CLI's own logic only.
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from kmdflow.cli import main
from kmdflow.experiments.config import ConfigError, load_config

MODE = '[initial]\nkind = "mode"\n'
TINY = MODE + '[method]\nn = 32\n[time]\nt_end = 1.0\nn_saves = 5\n[output]\nsnapshots = 2\n'


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``kmdflow args`` in-process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def assert_one_error_line(err: str, *needles: str) -> str:
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ") and "Traceback" not in err
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# (id, TOML text, what the error line must name)
BAD_CONFIGS = [
    ("malformed_toml", '[initial\nkind = "mode"\n', "line 1"),
    ("unknown_key_suggestion", MODE + "[time]\nt_ned = 10.0\n", "time.t_ned"),
    ("unknown_table_suggestion", MODE + "[tiem]\nt_end = 1.0\n", "tiem"),
    ("unknown_kind_suggestion", '[initial]\nkind = "von_mses"\n', "initial.kind"),
    ("string_for_number", MODE + '[time]\nt_end = "10"\n', "time.t_end"),
    ("bool_for_int", MODE + "[time]\nn_saves = true\n", "time.n_saves"),
    ("list_for_scalar", MODE + "[energy]\ns = [1.0, 2.0]\n", "energy.s"),
    ("s_zero", MODE + "[energy]\ns = 0.0\n", "energy.s"),
    ("s_negative", MODE + "[energy]\ns = -1.5\n", "energy.s"),
    ("n_odd", MODE + "[method]\nn = 513\n", "method.n"),
    ("n_too_small", MODE + "[method]\nn = 4\n", "method.n"),
    ("n_absurd", MODE + "[method]\nn = 1099511627776\n", "method.n"),
    ("t_end_zero", MODE + "[time]\nt_end = 0.0\n", "time.t_end"),
    ("t_end_negative", MODE + "[time]\nt_end = -1.0\n", "time.t_end"),
    ("t_end_inf", MODE + "[time]\nt_end = inf\n", "time.t_end"),
    ("amplitude_above_one", '[initial]\nkind = "mode"\namplitude = 1.5\n', "initial.amplitude"),
    ("indicator_length_zero", '[initial]\nkind = "indicator"\nstart = 1.0\nstop = 1.0\n', "initial.stop"),
    ("particles_nan", '[initial]\nkind = "particles"\npositions = [0.5, nan, 1.0]\n'
                      '[method]\nkind = "particles"\n', "initial.positions[1]"),
    ("missing_file", '[initial]\nkind = "file"\npath = "no_such.npy"\n', "initial.path"),
    ("dim_4", MODE + "[domain]\ndim = 4\n", "domain.dim"),
    ("atomic_initial_spectral", '[initial]\nkind = "particles"\npositions = [0.5, 1.0]\n', "initial.kind"),
    ("particles_n_mismatch", '[initial]\nkind = "particles"\npositions = [0.5, 1.0]\n'
                             '[method]\nkind = "particles"\nn = 3\n', "method.n"),
    ("mixture_weight_zero", '[initial]\nkind = "mixture"\n[[initial.components]]\nweight = 0.0\n'
                            'kind = "mode"\n', "initial.components[0].weight"),
    ("sphere_sobolev", MODE + '[domain]\nkind = "sphere"\n[energy]\nkernel = "sobolev"\n', "energy.kernel"),
    ("relu_on_torus", MODE + '[energy]\nkernel = "relu"\n', "energy.kernel"),
    ("wfr_on_torus", MODE + '[geometry]\nkind = "wfr"\n', "geometry.kind"),
    ("network_without_dt", MODE + '[domain]\nkind = "sphere"\n[method]\nkind = "network"\n', "method.dt"),
    ("missing_initial", "[time]\nt_end = 1.0\n", "initial"),
    ("kappa_too_large", '[initial]\nkind = "von_mises"\nkappa = 1000.0\n', "initial.kappa"),
    ("rtol_one", MODE + "[time]\nrtol = 1.0\n", "time.rtol"),
    ("t_first_after_t_end", MODE + "[time]\nt_end = 10.0\nt_first = 20.0\n", "time.t_first"),
    ("integrator_empty", MODE + '[method]\nintegrator = ""\n', "method.integrator"),
    ("summation_unknown", MODE + '[method]\nsummation = "fft"\n', "method.summation"),
    ("snapshots_one", MODE + "[output]\nsnapshots = 1\n", "output.snapshots"),
    ("key_of_other_kind", MODE + "decay = 2.0\n", "initial.decay"),
    ("particles_need_s_above_half", MODE + '[energy]\ns = 0.5\n[method]\nkind = "particles"\n', "energy.s"),
    ("particles_outside_domain", '[initial]\nkind = "particles"\npositions = [0.5, 7.0]\n[method]\nkind = "particles"\n',
     "initial.positions[1]"),
]
SUGGESTIONS = {"unknown_key_suggestion": "t_end", "unknown_table_suggestion": "'time'",
               "unknown_kind_suggestion": "von_mises", "atomic_initial_spectral": 'method.kind = "particles"'}


def write_config(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case, text, needle", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_exits_2_with_one_line(tmp_path, capsys, command, case, text, needle):
    path = write_config(tmp_path, text)
    out_dir = tmp_path / "out"
    args = [command, path] + (["--out", out_dir] if command == "run" else [])
    code, out, err = cli(capsys, *args)
    assert code == 2
    line = assert_one_error_line(err, needle, SUGGESTIONS.get(case, ""))
    if case == "malformed_toml":
        assert line.startswith(f"error: {path}: ")
    else:
        assert line.startswith(f"error: {needle}")
    assert out == ""
    assert not out_dir.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml"]


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("case", ["malformed_toml", "unknown_key_suggestion", "atomic_initial_spectral"])
def test_bad_config_through_python_m_kmdflow(tmp_path, command, case):
    text, needle = next((t, n) for c, t, n in BAD_CONFIGS if c == case)
    path = write_config(tmp_path, text)
    out_dir = tmp_path / "out"
    args = [sys.executable, "-m", "kmdflow", command, str(path)]
    args += ["--out", str(out_dir)] if command == "run" else []
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_error_line(proc.stderr, needle)
    assert proc.stdout == "" and not out_dir.exists()


def test_missing_config_file(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    code, _, err = cli(capsys, "check", missing)
    assert code == 2
    assert_one_error_line(err, str(missing), "no such file")


@pytest.mark.parametrize("args, needle", [
    (["run", "CONFIG"], "--out"),                     # missing required option
    (["run", "CONFIG", "--out", "OUT", "--ot", "x"], "--ot"),
    (["check"], "CONFIG.toml"),                       # missing argument
    (["check", "CONFIG", "extra"], "extra"),
    (["frobnicate"], "frobnicate"),
    (["sweep", "CONFIG", "--out", "OUT", "--workers", "zero"], "--workers"),
    (["sweep", "CONFIG", "--out", "OUT", "--workers", "0"], "--workers"),
])
def test_usage_errors_exit_2_with_one_line(tmp_path, capsys, args, needle):
    path = write_config(tmp_path, MODE)
    args = [str(path) if a == "CONFIG" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    code, out, err = cli(capsys, *args)
    assert code == 2
    assert_one_error_line(err, needle)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def fake_sweep(monkeypatch):
    """Replace ``kmdflow.experiments.sweep`` by stand-ins that record the CLI's calls."""
    calls: dict = {}
    rows = [{"run_dir": "run-0000-aaaaaaaa", "energy.s": 1.5, "status": "completed"},
            {"run_dir": "run-0001-bbbbbbbb", "energy.s": 2.0, "status": "completed"}]

    def load_sweep(path):
        calls["load"] = path
        return "the sweep"

    def run_sweep(sweep, out, *, scheduler, workers, progress):
        calls["run"] = {"sweep": sweep, "out": out, "scheduler": scheduler, "workers": workers,
                        "progress": progress}
        failed = [row for row in rows if row["status"] != "completed"]
        return types.SimpleNamespace(rows=rows, failed=failed, started=2, reused=0,
                                     parameter_keys=("energy.s",))

    module = types.ModuleType("kmdflow.experiments.sweep")
    module.load_sweep, module.run_sweep = load_sweep, run_sweep
    module.describe_values = lambda values: ", ".join(f"{k} = {v}" for k, v in values.items())
    monkeypatch.setitem(sys.modules, "kmdflow.experiments.sweep", module)
    return calls, rows


def test_sweep_dispatches_and_maps_failures_to_exit_3(tmp_path, capsys, fake_sweep):
    calls, rows = fake_sweep
    sweep_file = write_config(tmp_path, "[base]\n", "sweep.toml")
    code, out, err = cli(capsys, "sweep", sweep_file, "--out", tmp_path / "out", "--workers", "3")
    assert code == 0 and err == ""
    assert calls["load"] == sweep_file
    assert calls["run"] == {"sweep": "the sweep", "out": tmp_path / "out", "scheduler": None,
                            "workers": 3, "progress": "auto"}
    assert "2 of 2 runs completed" in out
    rows[1]["status"] = "failed: density fell to -0.5 at t = 3"
    code, out, err = cli(capsys, "sweep", sweep_file, "--out", tmp_path / "out",
                         "--scheduler", "tcp://10.0.0.1:8786")
    assert code == 3
    assert calls["run"]["scheduler"] == "tcp://10.0.0.1:8786" and calls["run"]["workers"] is None
    assert "1 of 2 runs completed" in out
    lines = err.strip().splitlines()
    assert lines[0] == "failed: run-0001-bbbbbbbb (energy.s = 2.0): density fell to -0.5 at t = 3"
    assert lines[-1].startswith("error: 1 of 2 runs failed")


def test_sweep_workers_with_scheduler_is_bad_input(tmp_path, capsys, fake_sweep):
    calls, _ = fake_sweep
    code, _, err = cli(capsys, "sweep", write_config(tmp_path, "[base]\n", "sweep.toml"), "--out",
                       tmp_path / "out", "--scheduler", "tcp://10.0.0.1:8786", "--workers", "2")
    assert code == 2
    assert_one_error_line(err, "--workers", "--scheduler")
    assert calls == {} and not (tmp_path / "out").exists()


def test_resume_without_a_checkpoint_is_bad_input(tmp_path, capsys):
    code, _, err = cli(capsys, "run", write_config(tmp_path, MODE), "--out", tmp_path / "out", "--resume")
    assert code == 2
    assert_one_error_line(err, "--resume", "no checkpoint")
    assert not (tmp_path / "out").exists()


def test_check_prints_the_resolved_summary(tmp_path, capsys):
    path = write_config(tmp_path, MODE + "k = 3\n[energy]\ns = 0.75\n")
    code, out, err = cli(capsys, "check", path)
    assert code == 0 and err == ""
    for text in ["torus", "s = 0.75", "k = 3", "amplitude = 0.5", "n = 512", "t_end = 10000",
                 "200 saves (log)", "20 snapshots", "outside the paper's theory",
                 load_config(path).hash()[:12]]:
        assert text in out, text
    assert out.rstrip().endswith("ok")


def test_version_and_bare_help(capsys):
    from kmdflow import __version__

    code, out, _ = cli(capsys, "--version")
    assert code == 0 and __version__ in out
    code, out, _ = cli(capsys)
    assert code == 0
    for command in ["run", "check", "plot", "reproduce", "sweep", "bench"]:
        assert command in out


# ------------------------------------------------------------------------------------------
# dispatch to the numerical commands, through stand-ins for the documented interfaces


@pytest.fixture
def fake_run(monkeypatch):
    """Replace ``kmdflow.experiments.run`` by a module whose ``run_config`` records its calls."""
    calls: list[dict] = []
    behaviour = {"status": "completed", "raise": None}

    def run_config(config, out, *, progress, overwrite, resume=False, handle_signals=False):
        calls.append({"config": config, "out": out, "progress": progress, "overwrite": overwrite,
                      "resume": resume, "handle_signals": handle_signals})
        if behaviour["raise"] is not None:
            raise behaviour["raise"]
        return types.SimpleNamespace(attrs={"status": behaviour["status"]})

    module = types.ModuleType("kmdflow.experiments.run")
    module.run_config = run_config
    monkeypatch.setitem(sys.modules, "kmdflow.experiments.run", module)
    return calls, behaviour


def test_run_dispatches_the_loaded_config(tmp_path, capsys, fake_run):
    calls, _ = fake_run
    path = write_config(tmp_path, TINY)
    code, out, err = cli(capsys, "run", path, "--out", tmp_path / "out")
    assert code == 0 and err == ""
    assert len(calls) == 1
    assert calls[0]["config"] == load_config(path)
    assert calls[0]["out"] == tmp_path / "out"
    assert calls[0]["progress"] is False  # stderr is not a terminal here
    assert calls[0]["overwrite"] is False
    assert "completed" in out


def test_progress_bar_only_on_a_terminal_without_quiet(tmp_path, capsys, monkeypatch, fake_run):
    calls, _ = fake_run
    path = write_config(tmp_path, TINY)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli(capsys, "run", path, "--out", tmp_path / "a")[0] == 0
    code, out, err = cli(capsys, "run", path, "--out", tmp_path / "b", "--quiet")
    assert code == 0 and out == "" and err == ""
    assert [c["progress"] for c in calls] == [True, False]


def test_numerical_failure_exits_3(tmp_path, capsys, fake_run):
    _, behaviour = fake_run
    behaviour["status"] = "failed: step size underflow at t = 12.5"
    code, out, err = cli(capsys, "run", write_config(tmp_path, TINY), "--out", tmp_path / "out")
    assert code == 3
    assert_one_error_line(err, "step size underflow at t = 12.5", str(tmp_path / "out"))


def test_config_error_found_while_building_exits_2(tmp_path, capsys, fake_run):
    _, behaviour = fake_run
    behaviour["raise"] = ConfigError("method.integrator", "unknown scheme; choose dopri5", "rk99")
    code, _, err = cli(capsys, "run", write_config(tmp_path, TINY), "--out", tmp_path / "out")
    assert code == 2
    line = assert_one_error_line(err, "method.integrator", '"rk99"')
    assert line == 'error: method.integrator = "rk99": unknown scheme; choose dopri5'


def test_interrupt_exits_130(tmp_path, capsys, fake_run):
    _, behaviour = fake_run
    behaviour["raise"] = KeyboardInterrupt()
    code, _, err = cli(capsys, "run", write_config(tmp_path, TINY), "--out", tmp_path / "out")
    assert code == 130
    assert_one_error_line(err, "interrupted")


def test_non_empty_out_needs_overwrite(tmp_path, capsys, fake_run):
    calls, _ = fake_run
    path = write_config(tmp_path, TINY)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "old.txt").write_text("keep me")
    code, _, err = cli(capsys, "run", path, "--out", out_dir)
    assert code == 2
    assert_one_error_line(err, "--out", "--overwrite")
    assert [p.name for p in out_dir.iterdir()] == ["old.txt"] and calls == []
    code, _, _ = cli(capsys, "run", path, "--out", out_dir, "--overwrite")
    assert code == 0 and calls[-1]["overwrite"] is True
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(capsys, "run", path, "--out", empty)[0] == 0
    code, _, err = cli(capsys, "run", path, "--out", path)  # a file, not a directory
    assert code == 2
    assert_one_error_line(err, "--out", "not a directory")


def test_missing_module_is_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "kmdflow.bench", None)
    code, _, err = cli(capsys, "bench")
    assert code == 2
    assert_one_error_line(err, "bench", "not available")


def test_plot_reproduce_bench_dispatch(tmp_path, capsys, monkeypatch):
    seen = {}

    def plot_run(out_dir, animate=False):
        seen["plot"] = (out_dir, animate)
        return [out_dir / "energy.png", out_dir / "state.png"]

    def reproduce_suite(out, quick):
        seen["reproduce"] = (out, quick)
        return out / "report.md"

    def run_benchmarks(quick):
        seen["bench"] = quick

    plotting = types.ModuleType("kmdflow.plotting")
    plotting.plot_run = plot_run
    reproduce = types.ModuleType("kmdflow.experiments.reproduce")
    reproduce.reproduce = reproduce_suite
    bench = types.ModuleType("kmdflow.bench")
    bench.run_benchmarks = run_benchmarks
    for module in (plotting, reproduce, bench):
        monkeypatch.setitem(sys.modules, module.__name__, module)

    run_dir = tmp_path / "run"
    code, _, err = cli(capsys, "plot", run_dir)
    assert code == 2
    assert_one_error_line(err, "DIR", "not a directory")
    run_dir.mkdir()
    code, _, err = cli(capsys, "plot", run_dir)
    assert code == 2
    assert_one_error_line(err, "result.nc")
    (run_dir / "result.nc").write_bytes(b"")
    code, out, _ = cli(capsys, "plot", run_dir)
    assert code == 0 and seen["plot"] == (run_dir, False)
    assert out.split() == [str(run_dir / "energy.png"), str(run_dir / "state.png")]
    code, out, _ = cli(capsys, "plot", run_dir, "--animate")
    assert code == 0 and seen["plot"] == (run_dir, True)

    code, out, _ = cli(capsys, "reproduce", "--out", tmp_path / "suite", "--quick")
    assert code == 0 and seen["reproduce"] == (tmp_path / "suite", True)
    assert str(tmp_path / "suite" / "report.md") in out
    code, _, err = cli(capsys, "reproduce", "--out", run_dir)  # not empty
    assert code == 2
    assert_one_error_line(err, "--out")

    assert cli(capsys, "bench", "--quick")[0] == 0 and seen["bench"] is True


# ------------------------------------------------------------------------------------------
# end to end with the real numerical stack


def test_run_end_to_end(tmp_path, capsys):
    path = write_config(tmp_path, TINY)
    code, _, err = cli(capsys, "run", path, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert (tmp_path / "out" / "result.nc").is_file()
    import xarray as xr

    with xr.open_dataset(tmp_path / "out" / "result.nc") as ds:
        assert ds.attrs["status"] == "completed"
        assert load_config(__import__("tomllib").loads(ds.attrs["config"])) == load_config(path)
        assert np.all(np.diff(ds["energy"].values) <= 1e-14)


@pytest.mark.parametrize("method, key", [
    ({"integrator": "etdrk5"}, "method.integrator"),
    ({"integrator": "rk4"}, "method.integrator"),
    ({"kind": "particles", "n": 100, "summation": "sorted"}, "method.summation"),
])
def test_check_rejects_what_run_would_reject(tmp_path, capsys, method, key):
    from kmdflow.experiments.config import dump_toml

    config = {"energy": {"s": 1.5}, "initial": {"kind": "mode"}, "method": method}
    path = write_config(tmp_path, dump_toml(config))
    code, _, err = cli(capsys, "check", path)
    assert code == 2
    assert_one_error_line(err, key)


@pytest.mark.parametrize("command", ["check", "run"])
@pytest.mark.parametrize("name, make, needle", [
    ("nan_in_file", lambda p: np.save(p, np.array([1.0, np.nan, 1.0, 1.0])), "finite"),
    ("corrupt_file", lambda p: p.write_bytes(b"not an npy file"), "cannot be read"),
    ("cannot_be_normalised", lambda p: np.save(p, np.zeros(8)), "positive mass"),
    ("negative_density", lambda p: np.save(p, np.array([1.0, -0.5, 1.0, 1.0])), ">= 0"),
])
def test_bad_data_files_exit_2_with_one_line(tmp_path, capsys, command, name, make, needle):
    make(tmp_path / "data.npy")
    for role in ("initial", "target"):
        other = "target" if role == "initial" else "initial"
        text = f'[{role}]\nkind = "file"\npath = "data.npy"\n[{other}]\nkind = "uniform"\n'
        path = write_config(tmp_path, text, name=f"{role}.toml")
        args = [command, path] + (["--out", tmp_path / "out"] if command == "run" else [])
        code, out, err = cli(capsys, *args)
        assert code == 2
        assert_one_error_line(err, f"{role}.path", needle)
        assert not (tmp_path / "out").exists()
