"""E7 of ``kmdflow reproduce``: the shallow ReLU network on the circle (MATH.md section 6).

Three discretisations of the same Wasserstein--Fisher--Rao flow (``alpha = 2, beta = 1``) from
the same start, a perturbed uniform measure, towards a uniform teacher: WFR particles, the
Fourier--Galerkin spectral method, and the finite-width network trained by gradient descent (and
minibatch SGD) on ``(a, w)``. Then long spectral runs measure the loss exponent against the
prediction ``-(r* + 2)``, ``r* = a - 1/2`` (``s = 2`` on the circle).
"""

from __future__ import annotations

import numpy as np

from kmdflow.experiments.report import Section


def _sphere_config(initial: dict, method: dict, t_end: float, n_saves: int, spacing: str, **time_keys) -> dict:
    return {"domain": {"kind": "sphere", "dim": 1}, "initial": initial, "method": method,
            "time": {"t_end": t_end, "n_saves": n_saves, "spacing": spacing, **time_keys}}


def _row(run: str, quantity: str, predicted, measured, tolerance: float | None, spread=None) -> dict:
    from kmdflow.experiments.reproduce import _relative_error

    error = _relative_error(measured, predicted) if predicted is not None else measured
    return {"run": run, "quantity": quantity, "predicted": predicted, "measured": measured,
            "± (local spread)": spread, "relative error": error,
            "within tolerance": None if tolerance is None else bool(error is not None and error <= tolerance),
            "tolerance": tolerance}


def e7_relu_network(out, quick: bool) -> Section:
    """The network on the circle: WFR particles vs spectral vs finite-width GD; the loss exponent."""
    from kmdflow.experiments.reproduce import _run, _save_figure, _window
    from kmdflow.plotting import pyplot
    from kmdflow.plotting_sphere import angles

    sec = Section("E7", "ReLU network on the circle: WFR particles, spectral, gradient descent, SGD")
    initial = {"kind": "perturbation", "amplitude": 0.3, "decay": 2.0, "modes": 64, "seed": 1}
    m, width, lr = (1024, 256, 0.02) if quick else (4096, 1024, 0.005)
    t_end, n_saves = 10.0, 51
    runs = {
        "particles": {"kind": "particles", "n": m},
        "spectral": {"kind": "spectral", "n": 512},
        "gd": {"kind": "network", "n": width, "dt": lr},
        "sgd": {"kind": "network", "n": width, "dt": lr, "batch": 256},
    }
    results = {name: _run(_sphere_config(initial, method, t_end, n_saves, "linear", rtol=1e-10), out / name)
               for name, method in runs.items()}
    loss = {name: ds["energy"].values for name, (ds, _) in results.items()}
    t = results["spectral"][0]["time"].values
    gap = lambda a, b: float(np.max(np.abs(loss[a] - loss[b]) / loss[b]))
    sec.table.append(_row(f"particles m = {m} vs spectral n = 512", "max relative loss gap, t <= 10",
                          None, gap("particles", "spectral"), 0.01))
    sec.table.append(_row(f"GD width {width}, lr {lr:g} vs particles", "max relative loss gap, t <= 10",
                          None, gap("gd", "particles"), None))
    sec.table.append(_row("SGD batch 256 vs GD (same lr)", "max relative loss gap, t <= 10", None,
                          gap("sgd", "gd"), None))

    rate_runs = {}
    n, horizon = (1024, 1e5) if quick else (4096, 1e6)
    for decay in (1.5, 2.0, 3.0):
        cfg = _sphere_config({"kind": "perturbation", "amplitude": 0.05, "decay": decay, "modes": n // 2 - 1},
                             {"kind": "spectral", "n": n}, horizon, 200, "log")
        ds, summary = _run(cfg, out / f"rate_a{decay:g}")
        rate_runs[decay] = (ds, summary)
        fit, predicted = summary["fitted_rate"], summary["predicted_rate"]["value"]
        sec.table.append(_row(f"spectral n = {n}, a = {decay:g}", f"loss exponent, window {_window(fit)}",
                              predicted, fit["value"], 0.05, fit["uncertainty"]))

    plt = pyplot()
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4.2))
    for name, values in loss.items():
        ax.plot(t[1:], values[1:], lw=1.2, ls="--" if name == "sgd" else "-", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("loss L(t)")
    ax.set_title("same start, four discretisations", fontsize=9)
    ax.legend(fontsize=8)
    for decay, (ds, summary) in rate_runs.items():
        tt, e = ds["time"].values, ds["energy"].values
        keep = (tt > 0) & (e > 0)
        bx.loglog(tt[keep], e[keep], lw=1.2, label=f"a = {decay:g}")
        fit, predicted = summary["fitted_rate"], summary["predicted_rate"]["value"]
        if fit["value"] is not None:
            t0, t1 = fit["t_start"], fit["t_stop"]
            law = np.geomspace(t0, t1, 20)
            bx.loglog(law, float(np.interp(t0, tt, e)) * (law / t0) ** predicted, "k--", lw=0.8)
    bx.set_xlabel("t")
    bx.set_ylabel("loss")
    bx.set_title("spectral: predicted slopes -(a + 3/2) dashed", fontsize=9)
    bx.legend(fontsize=8)
    for name, style in (("particles", {"s": 14, "color": "tab:blue"}), ("gd", {"s": 3, "color": "tab:orange"})):
        ds = results[name][0]
        pos, w = ds["positions"].values, ds["weights"].values
        cx.scatter(angles(pos[-1]), w.shape[1] * w[-1], label=f"{name}, t = {t_end:g}", **style)
    cx.set_xlim(0, 2 * np.pi)
    cx.set_xlabel("neuron angle")
    cx.set_ylabel("m × weight")
    cx.set_title("neurons: positions and weights", fontsize=9)
    cx.legend(fontsize=8)
    _save_figure(fig, sec, out, "e7_network.png")
    sec.paragraphs.append(
        "Training a width-m two-layer ReLU network f(x) = (1/m) sum a_j relu(w_j . x) on its population "
        "loss, with time scaled by m and balanced start a_j = |w_j|, is the Wasserstein-Fisher-Rao flow "
        "of the kernel loss with alpha = 2, beta = 1 for mu = (1/m) sum a_j |w_j| delta_{w_j/|w_j|} "
        "(MATH.md section 6). Gradient descent with learning rate lr is the explicit Euler scheme of "
        "that flow, so its gap to the particle flow is O(lr); SGD adds the noise of its minibatches. "
        "On the circle the kernel's Fourier multiplier is 1/(pi^2 (l^2 - 1)^2) on even l, 1/16 at "
        "l = 1 and 0 on odd l >= 3: the loss behaves like the s = 2 Sobolev energy but cannot see "
        "odd harmonics >= 3, so it may converge while mu does not converge to nu. Linearising at the "
        "uniform teacher, mode l decays at the rate (l^2 + 2) k_hat(l) ~ l^-2 / pi^2, which gives the "
        "loss exponent -(r* + 2), r* = a - 1/2 (our derivation); the fit window is that of the "
        "Sobolev s = 2 case stretched by pi^2.")
    return sec
