"""Pictures of a finished run. Plotting only reads saved results (``result.nc``, ``summary.json``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kmdflow.io import read_result


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (pictures are files)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_energy(ds, summary: dict, path: Path) -> Path:
    """``energy.png``: the energy on log axes with the predicted law drawn through the fit window."""
    plt = pyplot()
    t = ds["time"].values
    e = ds["energy"].values
    predicted = summary.get("predicted_rate", {})
    fitted = summary.get("fitted_rate", {})
    exponential = predicted.get("kind") == "exponential"
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    mask = (t > 0) & (e > 0) if not exponential else e > 0
    ax.plot(t[mask], e[mask], "o-" if mask.sum() < 3 else "-", lw=1.6, label="energy")
    if mask.any():  # a run that failed at its first save may have nothing to draw on log axes
        ax.set_yscale("log")
        if not exponential:
            ax.set_xscale("log")
    if predicted.get("value") is not None and np.any(mask):
        t0 = fitted.get("t_start") or t[mask][len(t[mask]) // 2]
        t1 = fitted.get("t_stop") or t[mask][-1]
        e0 = float(np.interp(t0, t, e))
        tt = np.linspace(t0, t1, 50) if exponential else np.geomspace(t0, t1, 50)
        law = e0 * (np.exp(-predicted["value"] * (tt - t0)) if exponential else (tt / t0) ** predicted["value"])
        name = f"rate {predicted['value']:.3g}" if exponential else f"slope {predicted['value']:.3g}"
        ax.plot(tt, law, "k--", lw=1.0, label=f"predicted {name}")
    if fitted.get("value") is not None:
        ax.axvspan(fitted["t_start"], fitted["t_stop"], color="0.9", zorder=0,
                   label=f"fit {fitted['value']:.4g} ± {fitted['uncertainty']:.2g}")
    floor = summary.get("floor")
    if floor:
        ax.axhline(floor, color="tab:red", lw=0.8, ls=":", label="particle floor")
    ax.set_xlabel("t")
    ax.set_ylabel(r"$E(t) = \frac{1}{2}\|\mu_t - \nu\|^2$")
    ax.set_title(summary.get("title", ""), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _target_density(ds):
    """The target density on a fine grid from the saved config, or None (atoms, unreadable config)."""
    try:
        from kmdflow.experiments.config import load_config
        from kmdflow.measures import Atoms, make_measure

        import tomllib

        config = load_config(tomllib.loads(ds.attrs["config"]))
        target = make_measure(config.target.kind, config.target.params)
    except Exception:  # a picture without the target is still a picture
        return None
    if isinstance(target, Atoms):
        return None
    x = np.linspace(0.0, 2 * np.pi, 512)
    return x, target.values(x)


def _break_wraps(times: np.ndarray, positions: np.ndarray):
    """Insert a NaN row where a particle wraps around the circle, so its line does not jump across."""
    rows_t, rows_p = [times[:1]], [positions[:1]]
    for i in range(1, len(times)):
        jumped = np.abs(positions[i] - positions[i - 1]) > np.pi
        if jumped.any():
            rows_t.append([0.5 * (times[i - 1] + times[i])])
            rows_p.append(np.where(jumped, np.nan, positions[i])[None])
        rows_t.append(times[i:i + 1])
        rows_p.append(positions[i:i + 1])
    return np.concatenate(rows_t), np.concatenate(rows_p)


def plot_state(ds, path: Path) -> Path:
    """``state.png``: density snapshots over the circle, or particle trajectories and final histogram."""
    plt = pyplot()
    times = ds["snapshot_time"].values
    colors = plt.cm.viridis(np.linspace(0, 1, len(times)))
    target = _target_density(ds)
    if "density" in ds:
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        x = ds["x"].values
        for i, t in enumerate(times):
            ax.plot(x, ds["density"].values[i], color=colors[i], lw=1.0,
                    label=f"t = {t:.3g}" if i in (0, len(times) - 1) else None)
        density_axis = ax
    else:
        fig, (ax, density_axis) = plt.subplots(1, 2, figsize=(10, 4.4))
        pos = ds["positions"].values[..., 0]
        pos = pos[:, :: max(1, pos.shape[1] // 200)]
        t_plot = np.where(times > 0, times, times[times > 0].min() / 2 if np.any(times > 0) else 1.0)
        tt, pp = _break_wraps(t_plot, pos)
        ax.plot(tt, pp, color="tab:blue", lw=0.5, alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("t (t = 0 drawn at the left edge)")
        ax.set_ylabel("positions")
        bins = int(np.clip(ds.sizes["particle"] // 20, 10, 100))
        # histogram as a density w.r.t. dx / 2 pi: mass in a bin times the number of bins
        density_axis.hist(ds["positions"].values[-1, :, 0], bins=bins, range=(0, 2 * np.pi),
                          weights=ds["weights"].values[-1] * bins, color="tab:blue", alpha=0.7,
                          label=f"particles, t = {times[-1]:.3g}")
    if target is not None:
        density_axis.plot(*target, "k--", lw=1.0, label="target")
    density_axis.set_xlabel("x")
    density_axis.set_ylabel("density (w.r.t. dx / 2π)")
    density_axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_run(out_dir: Path) -> list[Path]:
    """Redraw ``energy.png`` and ``state.png`` of a run directory from its saved files."""
    out_dir = Path(out_dir)
    ds = read_result(out_dir / "result.nc")
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return [plot_energy(ds, summary, out_dir / "energy.png"), plot_state(ds, out_dir / "state.png")]
