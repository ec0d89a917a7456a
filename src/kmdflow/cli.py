"""The ``kmdflow`` command line: parse, validate, dispatch; nothing numerical happens here.

Commands (DESIGN.md section 2)::

    kmdflow run CONFIG.toml --out DIR [--resume] [--overwrite] [--quiet]
    kmdflow check CONFIG.toml
    kmdflow plot DIR [--animate]
    kmdflow reproduce --out DIR [--quick] [--overwrite]
    kmdflow sweep SWEEP.toml --out DIR [--scheduler ADDRESS] [--workers N]
    kmdflow bench [--quick]

Exit codes: 0 done, 2 bad input, 3 numerical failure, 130 interrupted. Bad input (a config
error, a missing file, a bad argument, a non-empty output directory) prints exactly one line,
``error: <key>: <message>``, on stderr and writes nothing. The numerical modules are imported
inside the commands so that ``kmdflow check`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from kmdflow import __version__
from kmdflow.experiments.config import Config, ConfigError, MeasureSpec, load_config

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_NUMERICAL_FAILURE = 3
EXIT_INTERRUPTED = 130



def _click_class(name: str) -> type[BaseException]:
    """A base class of typer's ``BadParameter`` by name (typer vendors click from 0.22 on)."""
    return next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == name)


_USAGE_ERROR = _click_class("UsageError")
_CLICK_EXCEPTION = _click_class("ClickException")


class BadInput(Exception):
    """Bad command-line input: ``key`` (an argument or option) and ``message``."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message


app = typer.Typer(name="kmdflow", add_completion=False, no_args_is_help=True,
                  pretty_exceptions_enable=False,
                  help="Wasserstein gradient flows of kernel mean discrepancies.")


def _show_version(value: bool) -> None:
    if value:
        print(f"kmdflow {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_show_version,
                                                help="Print the version and exit.")] = False) -> None:
    """Wasserstein gradient flows of kernel mean discrepancies."""


ConfigArg = Annotated[Path, typer.Argument(metavar="CONFIG.toml", help="A TOML run configuration.",
                                           show_default=False)]
OutOption = Annotated[Path, typer.Option("--out", metavar="DIR", help="Output directory.",
                                         show_default=False)]


@app.command()
def run(config: ConfigArg, out: OutOption,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from a checkpoint.")] = False,
        overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace results in DIR.")] = False,
        quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar or summary.")] = False,
        ) -> int:
    """Run one flow and write result.nc, summary.json and pictures to DIR."""
    if resume and overwrite:
        raise BadInput("--resume", "give --resume (continue DIR's run) or --overwrite (start again), "
                       "not both")
    cfg = load_config(config)
    if not resume:
        _check_out_dir(out, overwrite, "--overwrite")
    if not quiet:
        for note in cfg.notes():
            print(f"note: {note}", file=sys.stderr)
    run_config = _lazy("kmdflow.experiments.run", "run_config", "run")
    dataset = run_config(cfg, out, progress=not quiet and sys.stderr.isatty(), overwrite=overwrite,
                         resume=resume, handle_signals=True)
    status = str(dataset.attrs.get("status", "failed: no status recorded"))
    if status == "interrupted":
        print(f"error: interrupted; resume with `kmdflow run {config} --out {out} --resume`",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if status != "completed":
        reason = status.removeprefix("failed:").strip() or status
        print(f"error: numerical failure: {reason}; everything computed so far is in {out}",
              file=sys.stderr)
        return EXIT_NUMERICAL_FAILURE
    if not quiet:
        print(f"completed: results in {out}")
    return EXIT_OK


@app.command()
def check(config: ConfigArg) -> int:
    """Validate a config and print its resolved summary (builds the problem, runs nothing)."""
    cfg = load_config(config)
    # what only building reveals (unknown scheme, a summation that cannot serve s, unreadable
    # data) must fail here exactly as it would in `run`
    _lazy("kmdflow.experiments.build", "build_problem", "check")(cfg)
    _print_summary(cfg, config)
    return EXIT_OK


@app.command()
def plot(directory: Annotated[Path, typer.Argument(metavar="DIR", show_default=False,
                                                   help="The --out DIR of a run.")],
         animate: Annotated[bool, typer.Option("--animate", help="Also write an animation.")] = False,
         ) -> int:
    """Draw the pictures of a finished run from its saved results."""
    if not directory.is_dir():
        raise BadInput("DIR", f"{directory} is not a directory; pass the --out DIR of a run")
    if not (directory / "result.nc").is_file():
        raise BadInput("DIR", f"{directory} holds no result.nc; pass the --out DIR of a finished run")
    plot_run = _lazy("kmdflow.plotting", "plot_run", "plot")
    try:
        paths = plot_run(directory, animate=animate)
    except (OSError, ValueError, KeyError) as err:
        raise BadInput("DIR", f"cannot read the results in {directory} ({type(err).__name__}: {err}); "
                       "rerun `kmdflow run` into it") from None
    for path in paths:
        print(path)
    return EXIT_OK


@app.command()
def reproduce(out: OutOption,
              quick: Annotated[bool, typer.Option("--quick", help="Small sizes (minutes).")] = False,
              overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace results in DIR.")] = False,
              ) -> int:
    """Run the d = 1 experiment suite and write its report to DIR."""
    _check_out_dir(out, overwrite, "--overwrite")
    reproduce_suite = _lazy("kmdflow.experiments.reproduce", "reproduce", "reproduce")
    report = reproduce_suite(out, quick=quick)
    print(f"report: {report}")
    return EXIT_OK


@app.command()
def sweep(sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP.toml", show_default=False,
                                                     help="A TOML sweep description.")],
          out: OutOption,
          scheduler: Annotated[Optional[str], typer.Option("--scheduler", metavar="ADDRESS",
                                                           help="A dask scheduler address.")] = None,
          workers: Annotated[Optional[int], typer.Option("--workers", metavar="N", min=1,
                                                         help="Local worker processes.")] = None,
          ) -> int:
    """Run a parameter sweep on Dask distributed: a directory per run, DIR/sweep.csv and sweep.nc.

    Runs already completed in DIR (same config) are reused; failed ones are run again.
    """
    if scheduler is not None and workers is not None:
        raise BadInput("--workers", "sizes the local cluster; with --scheduler the workers of that "
                       "cluster run the sweep; drop --workers")
    load_sweep = _lazy("kmdflow.experiments.sweep", "load_sweep", "sweep")
    run_sweep = _lazy("kmdflow.experiments.sweep", "run_sweep", "sweep")
    describe_values = _lazy("kmdflow.experiments.sweep", "describe_values", "sweep")
    spec = load_sweep(sweep_file)
    result = run_sweep(spec, out, scheduler=scheduler, workers=workers, progress="auto")
    total, failed = len(result.rows), result.failed
    print(f"{total - len(failed)} of {total} runs completed ({result.started} run now, "
          f"{result.reused} reused); table: {out / 'sweep.csv'}")
    if not failed:
        return EXIT_OK
    for row in failed:
        values = describe_values({key: row[key] for key in result.parameter_keys})
        print(f"failed: {row['run_dir']} ({values}): {row['status'].removeprefix('failed:').strip()}",
              file=sys.stderr)
    print(f"error: {len(failed)} of {total} runs failed; every row and run directory is kept in {out}",
          file=sys.stderr)
    return EXIT_NUMERICAL_FAILURE


@app.command()
def bench(quick: Annotated[bool, typer.Option("--quick", help="Small sizes.")] = False) -> int:
    """Measure speed against the named baselines and print the ratios."""
    run_benchmarks = _lazy("kmdflow.bench", "run_benchmarks", "bench")
    run_benchmarks(quick=quick)
    return EXIT_OK


def _lazy(module: str, name: str, command: str):
    """Import ``module.name`` when the command runs; a module not built yet is bad input."""
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as err:
        if err.name is not None and module.startswith(err.name):
            raise BadInput(command, f"not available in this build ({module} is missing)") from None
        raise


def _check_out_dir(out: Path, overwrite: bool, flag: str) -> None:
    """Refuse an output path that is a file, or a non-empty directory without ``flag``."""
    if out.exists() and not out.is_dir():
        raise BadInput("--out", f"{out} exists and is not a directory; choose a directory path")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise BadInput("--out", f"{out} is not empty; pass {flag} to replace its results, or choose "
                       "a new directory")


def _describe_measure(spec: MeasureSpec) -> str:
    params = spec.params
    if spec.kind == "particles":
        weights = "given weights" if params["weights"] is not None else "equal weights"
        return f"particles ({len(params['positions'])} atoms, {weights})"
    if spec.kind == "mixture":
        kinds = ", ".join(f"{w:g} {sub.kind}" for w, sub in params["components"])
        return f"mixture ({kinds})"
    if spec.kind == "file":
        return f"file {params['path']}" + (f" (weights {params['weights_path']})"
                                          if params["weights_path"] else "")
    details = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}" for k, v in params.items())
    return f"{spec.kind} ({details})" if details else spec.kind


def _print_summary(cfg: Config, path: Path) -> None:
    from rich.console import Console
    from rich.markup import escape

    method, time = cfg.method, cfg.time
    step = f"dt = {method.dt:g}" if method.dt is not None else f"rtol = {time.rtol:g}, atol = {time.atol:g}"
    spacing = time.spacing + (f" from t = {time.t_first:g}" if time.t_first is not None else "")
    rows = [
        ("config", f"{path} (sha256 {cfg.hash()[:12]})"),
        ("domain", f"{cfg.domain.kind}, d = {cfg.domain.dim}"),
        ("energy", f"{cfg.energy.kernel}, s = {cfg.energy.s:g}"),
        ("geometry", cfg.geometry.kind + (f", alpha = {cfg.geometry.alpha:g}, beta = {cfg.geometry.beta:g}"
                                          if cfg.geometry.kind == "wfr" else "")),
        ("target", _describe_measure(cfg.target)),
        ("initial", _describe_measure(cfg.initial)),
        ("method", f"{method.kind}, n = {method.n}, integrator {method.integrator}"
                   + (f", summation {method.summation}" if method.kind == "particles" else "")
                   + (f", minibatch SGD (batch {method.batch})" if method.batch else
                      ", population gradient descent" if method.kind == "network" else "")),
        ("time", f"t_end = {time.t_end:g}, {step}, {time.n_saves} saves ({spacing})"),
        ("output", f"{cfg.output.snapshots} snapshots, checkpoint every {cfg.output.checkpoint_every:g} s"),
    ]
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    for label, text in rows:
        console.print(f"[bold]{label:<9}[/bold] {escape(text)}")
    for note in cfg.notes():
        console.print(f"[yellow]note[/yellow]      {escape(note)}")
    console.print("[green]ok[/green]")


def _error(key_and_message: str) -> int:
    print(f"error: {' '.join(key_and_message.split())}", file=sys.stderr)
    return EXIT_BAD_INPUT


def execute(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=list(argv) if argv is not None else None, prog_name="kmdflow",
                              standalone_mode=False)
    except _USAGE_ERROR as err:
        ctx = getattr(err, "ctx", None)
        if type(err).__name__ == "NoArgsIsHelpError":  # a bare ``kmdflow``: show the help
            text = err.format_message()  # the help text; typer's rich help printed itself already
            if text:
                print(text)
            return EXIT_OK
        where = ctx.command_path if ctx is not None else "kmdflow"
        return _error(f"{where}: {err.format_message()} (see '{where} --help')")
    except _CLICK_EXCEPTION as err:
        return _error(f"kmdflow: {err.format_message()}")
    except typer.Abort:
        return _error("kmdflow: aborted")
    except (ConfigError, BadInput) as err:
        return _error(str(err))
    except KeyboardInterrupt:
        result = EXIT_INTERRUPTED
    if result == EXIT_INTERRUPTED:
        print("error: interrupted", file=sys.stderr)
    return result if isinstance(result, int) else EXIT_OK


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point (``kmdflow``, ``python -m kmdflow``): exit with the code."""
    sys.exit(execute(argv))
