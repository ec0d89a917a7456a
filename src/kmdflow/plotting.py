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
    from kmdflow.measures import Atoms, make_measure

    config = _config(ds)
    try:
        target = make_measure(config.target.kind, config.target.params, base_dir=config.source_dir)
    except Exception:  # a picture without the target is still a picture (or no config)
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


def _plot_state_1d(ds, path: Path) -> Path:
    """Density snapshots over the circle, or particle trajectories and the final histogram."""
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


def _image(density: np.ndarray) -> np.ndarray:
    """A 2-D picture of a 2-D or 3-D density: itself, or its slice through z = 0."""
    return density if density.ndim == 2 else density[..., 0]


def _plot_state_nd(ds, path: Path) -> Path:
    """First and last state in 2-D: density images (3-D: the slice z = 0), or particles coloured by weight."""
    plt = pyplot()
    times = ds["snapshot_time"].values
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ax, i in zip(axes, (0, len(times) - 1)):
        if "density" in ds:
            density = ds["density"].values[i]
            img = ax.imshow(_image(density).T, origin="lower", extent=(0, 2 * np.pi, 0, 2 * np.pi), cmap="viridis")
            fig.colorbar(img, ax=ax, shrink=0.8, label="density" + (" (slice z = 0)" if density.ndim == 3 else ""))
        else:
            pos, w = ds["positions"].values[i], ds["weights"].values[i]
            show = slice(None, None, max(1, pos.shape[0] // 20000))
            dots = ax.scatter(pos[show, 0], pos[show, 1], c=w[show], s=1.0, cmap="viridis")
            fig.colorbar(dots, ax=ax, shrink=0.8, label="weight")
            ax.set_xlim(0, 2 * np.pi)
            ax.set_ylim(0, 2 * np.pi)
        ax.set_aspect("equal")
        ax.set_title(f"t = {times[i]:.3g}", fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _config(ds):
    """The run's config from the dataset's attributes, or None (unreadable)."""
    try:
        import tomllib

        from kmdflow.experiments.config import load_config

        return load_config(tomllib.loads(ds.attrs["config"]))
    except Exception:  # pictures of a dataset without a usable config fall back to the torus
        return None


def plot_state(ds, path: Path) -> Path:
    """``state.png``: the state picture of a run (1-D curves and trajectories, 2-D images, or the
    neurons on the sphere: :mod:`kmdflow.plotting_sphere`)."""
    config = _config(ds)
    if config is not None and config.domain.kind == "sphere" and "positions" in ds:
        from kmdflow.plotting_sphere import plot_sphere_state

        return plot_sphere_state(ds, config, path)
    spatial = ds["density"].ndim - 1 if "density" in ds else ds.sizes["coord"]
    return _plot_state_1d(ds, path) if spatial == 1 else _plot_state_nd(ds, path)


def animate_run(ds, path: Path, fps: int = 8) -> Path:
    """``animation.gif``: one frame per snapshot (matplotlib's Pillow writer)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    plt = pyplot()
    times = ds["snapshot_time"].values
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    if "density" in ds and ds["density"].ndim == 2:
        x, rho = ds["x"].values, ds["density"].values
        (artist,) = ax.plot(x, rho[0])
        ax.set_ylim(min(0.0, rho.min()), rho.max() * 1.05)
        update = lambda i: artist.set_ydata(rho[i])  # noqa: E731
    elif "density" in ds:
        frames = np.stack([_image(d) for d in ds["density"].values])
        artist = ax.imshow(frames[0].T, origin="lower", extent=(0, 2 * np.pi, 0, 2 * np.pi),
                           vmin=frames.min(), vmax=frames.max())
        update = lambda i: artist.set_data(frames[i].T)  # noqa: E731
    else:
        pos = ds["positions"].values
        config = _config(ds)
        if config is not None and config.domain.kind == "sphere":
            from kmdflow.plotting_sphere import plane_positions

            plane, xlim, ylim = plane_positions(pos)
            artist = ax.scatter(plane[0, :, 0], plane[0, :, 1], s=1.0)
            update = lambda i: artist.set_offsets(plane[i])  # noqa: E731
            ax.set_ylim(*ylim)
            ax.set_xlim(*xlim)
        elif pos.shape[-1] == 1:  # particles on the circle: positions against their rank
            rank = np.arange(pos.shape[1])
            artist = ax.scatter(np.sort(pos[0, :, 0]), rank, s=1.0)
            update = lambda i: artist.set_offsets(np.c_[np.sort(pos[i, :, 0]), rank])  # noqa: E731
            ax.set_ylabel("rank")
        else:
            artist = ax.scatter(pos[0, :, 0], pos[0, :, 1], s=1.0)
            update = lambda i: artist.set_offsets(pos[i, :, :2])  # noqa: E731
            ax.set_ylim(0, 2 * np.pi)
        if config is None or config.domain.kind != "sphere":
            ax.set_xlim(0, 2 * np.pi)
    title = ax.set_title(f"t = {times[0]:.3g}")

    def frame(i):
        update(i)
        title.set_text(f"t = {times[i]:.3g}")
        return (artist, title)

    FuncAnimation(fig, frame, frames=len(times), blit=False).save(path, writer=PillowWriter(fps=fps))
    plt.close(fig)
    return path


def plot_run(out_dir: Path, animate: bool = False) -> list[Path]:
    """Redraw ``energy.png`` and ``state.png`` of a run directory from its saved files; with
    ``animate`` also write ``animation.gif``."""
    out_dir = Path(out_dir)
    ds = read_result(out_dir / "result.nc")
    summary_path = out_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    paths = [plot_energy(ds, summary, out_dir / "energy.png"), plot_state(ds, out_dir / "state.png")]
    if animate:
        paths.append(animate_run(ds, out_dir / "animation.gif"))
    return paths
