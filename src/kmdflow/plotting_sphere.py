"""Pictures of particle and network runs on the sphere ``S^d`` (neurons' positions and weights).

On the circle positions are drawn as angles ``phi = atan2(theta_2, theta_1)`` in ``[0, 2 pi)``; on
``S^d``, ``d >= 2``, as longitude and latitude of the first three coordinates. Weights are drawn
as ``m w_j`` (1 for equal weights), so widths ``m`` compare.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kmdflow.plotting import _break_wraps, pyplot


def angles(points: np.ndarray) -> np.ndarray:
    """Angles in ``[0, 2 pi)`` of circle points ``(..., 2)``."""
    return np.mod(np.arctan2(points[..., 1], points[..., 0]), 2 * np.pi)


def lon_lat(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longitude in ``[-pi, pi)`` and latitude in ``[-pi/2, pi/2]`` of the first three coordinates."""
    x = points[..., :3] / np.linalg.norm(points[..., :3], axis=-1, keepdims=True)
    return np.arctan2(x[..., 1], x[..., 0]), np.arcsin(np.clip(x[..., 2], -1.0, 1.0))


def teacher_atoms(config):
    """``(points (M, d+1), weights (M,))`` of a teacher made of neurons, else ``None``."""
    from kmdflow.measures.sphere import SphereAtoms, sphere_measure

    try:
        target = sphere_measure(config.target.kind, config.target.params, config.source_dir, config.domain.dim)
    except Exception:  # a picture without the teacher is still a picture
        return None
    return (target.points, target.weights) if isinstance(target, SphereAtoms) else None


def plot_sphere_state(ds, config, path: Path) -> Path:
    """``state.png`` of a sphere run: trajectories (circle) and the neurons at the start and the end."""
    plt = pyplot()
    times = ds["snapshot_time"].values
    pos, w = ds["positions"].values, ds["weights"].values
    m = w.shape[1]
    teacher = teacher_atoms(config)
    if pos.shape[-1] == 2:
        fig, (ax, right) = plt.subplots(1, 2, figsize=(10.5, 4.4))
        phi = angles(pos)[:, :: max(1, m // 200)]
        t_plot = np.where(times > 0, times, times[times > 0].min() / 2 if np.any(times > 0) else 1.0)
        ax.plot(*_break_wraps(t_plot, phi), color="tab:blue", lw=0.5, alpha=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("t (t = 0 drawn at the left edge)")
        ax.set_ylabel("neuron angle")
        for i, style in ((0, {"color": "0.6", "s": 4, "label": f"t = {times[0]:.3g}"}),
                         (-1, {"color": "tab:blue", "s": 6, "label": f"t = {times[-1]:.3g}"})):
            right.scatter(angles(pos[i]), m * w[i], **style)
        if teacher is not None:
            for j, phi_j in enumerate(angles(teacher[0])):
                right.axvline(phi_j, color="k", lw=1.0, ls="--", label="teacher neurons" if j == 0 else None)
        right.set_xlim(0, 2 * np.pi)
        right.set_xlabel("angle")
        right.set_ylabel("m × weight")
        right.legend(fontsize=8)
    else:
        fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4), sharey=True)
        for ax, i in zip(axes, (0, len(times) - 1)):
            lon, lat = lon_lat(pos[i])
            dots = ax.scatter(lon, lat, c=m * w[i], s=4, cmap="viridis")
            fig.colorbar(dots, ax=ax, shrink=0.8, label="m × weight")
            if teacher is not None:
                ax.scatter(*lon_lat(teacher[0]), marker="x", color="tab:red", s=60, label="teacher")
                ax.legend(fontsize=8, loc="lower left")
            ax.set_xlim(-np.pi, np.pi)
            ax.set_ylim(-np.pi / 2, np.pi / 2)
            ax.set_xlabel("longitude")
            ax.set_title(f"t = {times[i]:.3g}", fontsize=9)
        axes[0].set_ylabel("latitude")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plane_positions(pos: np.ndarray) -> tuple[np.ndarray, tuple[float, float], tuple[float, float]]:
    """Positions ``(S, N, d+1)`` as points of a plane ``(S, N, 2)`` for animations, with axis limits."""
    if pos.shape[-1] == 2:
        phi = np.sort(angles(pos), axis=1)
        rank = np.broadcast_to(np.arange(pos.shape[1]), phi.shape)
        return np.stack([phi, rank], axis=-1), (0.0, 2 * np.pi), (0.0, float(pos.shape[1]))
    lon, lat = lon_lat(pos)
    return np.stack([lon, lat], axis=-1), (-np.pi, np.pi), (-np.pi / 2, np.pi / 2)
