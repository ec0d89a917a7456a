"""What the loader does differently on the sphere ``S^d`` (ReLU networks, MATH.md section 6).

- Defaults by domain: ``energy.kernel`` is "sobolev" on the torus and "relu" on the sphere;
  ``geometry.kind`` is "wasserstein" on the torus and "wfr" on the sphere (the network case,
  ``alpha = 2, beta = 1``). The resolved ``energy.s`` of the ReLU kernel is ``(d + 3) / 2``.
- Measures: on the circle every torus kind works in the angle; on ``S^d``, ``d >= 2``, the kinds are
  uniform, von_mises (``loc`` a direction of ``d + 1`` numbers), particles and file. Particle
  positions are vectors of ``d + 1`` numbers (normalised to the sphere); on the circle angles too.
- Methods: "particles" (conic WFR particles, any ``d``), "spectral" (the circle only),
  "network" (a width-``n`` network trained by gradient descent, step ``method.dt``, or by minibatch
  SGD with ``method.batch``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from kmdflow.experiments.config_schema import PerDim, nonempty_array
from kmdflow.experiments.config_values import ConfigError, as_float
from kmdflow.measures.sphere import SPHERE_DENSITY_KINDS

#: Measure kinds on ``S^d`` for ``d >= 2`` (on the circle: every torus kind).
SPHERE_KINDS = (*SPHERE_DENSITY_KINDS, "particles", "file")
#: ``method.kind`` choices that exist on the torus.
TORUS_METHODS = ("spectral", "particles")
#: ``method.summation`` choices on the sphere (``"sorted"``: the circle only; ``"direct"``: dense blocks).
SPHERE_SUMMATIONS = ("auto", "sorted", "direct")
#: The geometry of network training (MATH.md section 6).
NETWORK_GEOMETRY = {"kind": "wfr", "alpha": 2.0, "beta": 1.0}


def relu_s(dim: int) -> float:
    """The Sobolev exponent the ReLU kernel on ``S^d`` behaves like: ``(d + 3) / 2``."""
    return (dim + 3) / 2


def _vector(key: str, value: object, dim: int) -> tuple[float, ...]:
    """A nonzero vector of ``d + 1`` numbers (a point of ``S^d`` before normalisation)."""
    example = "[" + ", ".join(["0"] * dim + ["1"]) + "]"
    if not isinstance(value, (list, tuple)) or len(value) != dim + 1:
        raise ConfigError(key, f"on S^{dim} give a vector of {dim + 1} numbers (normalised to the "
                          f"sphere), e.g. {example}", value)
    vector = tuple(as_float(f"{key}[{i}]", v) for i, v in enumerate(value))
    if not any(vector):
        raise ConfigError(key, f"must not be the zero vector; e.g. {example}", value)
    return vector


def sphere_loc(key: str, value: object, dim: int = 1):
    """``von_mises.loc`` on the sphere: a direction on ``S^d``; on the circle also an angle, and a
    direction there is stored as its angle in ``[0, 2 pi)``."""
    if dim == 1 and not isinstance(value, (list, tuple)):
        return as_float(key, value, "an angle or a vector of 2 numbers")
    vector = _vector(key, value, dim)
    return math.atan2(vector[1], vector[0]) % (2 * math.pi) if dim == 1 else vector


def sphere_positions(key: str, value: object, dim: int = 1) -> tuple:
    """``particles.positions`` on the sphere: vectors of ``d + 1`` numbers (on the circle: angles too)."""
    items = nonempty_array(key, value)
    if dim == 1 and all(not isinstance(item, (list, tuple)) for item in items):
        return tuple(as_float(f"{key}[{i}]", v) for i, v in enumerate(items))
    return tuple(_vector(f"{key}[{i}]", item, dim) for i, item in enumerate(items))


#: Validators that replace the torus ones on the sphere: ``(kind, key) -> PerDim``.
SPHERE_VALIDATORS = {
    ("von_mises", "loc"): PerDim(sphere_loc, lambda dim: 0.0 if dim == 1 else (0.0,) * dim + (1.0,)),
    ("particles", "positions"): PerDim(sphere_positions),
}


def resolve_domain(sections: dict, raw: Mapping) -> None:
    """Domain-dependent defaults and the checks that tie kernel and geometry to the domain."""
    domain, energy, geometry = sections["domain"], sections["energy"], sections["geometry"]
    dim, kind = domain["dim"], domain["kind"]
    given = {name: raw.get(name, {}) for name in ("energy", "geometry", "method")}
    if kind == "torus":
        if dim > 3:
            raise ConfigError("domain.dim", "the torus is T^1, T^2 or T^3: dim must be 1, 2 or 3", dim)
        if energy["kernel"] == "relu":
            raise ConfigError("energy.kernel", "the ReLU kernel lives on the sphere; set [domain] "
                              "kind = \"sphere\" (or use kernel = \"sobolev\" on the torus)", "relu")
        if geometry["kind"] == "wfr":
            raise ConfigError("geometry.kind", "the Wasserstein-Fisher-Rao flow is implemented for the "
                              "ReLU kernel on the sphere; set [domain] kind = \"sphere\", or use "
                              "kind = \"wasserstein\" on the torus", "wfr")
        if sections["method"]["kind"] not in TORUS_METHODS:
            raise ConfigError("method.kind", "a network lives on the sphere; set [domain] kind = "
                              "\"sphere\", or use \"spectral\" or \"particles\" on the torus",
                              sections["method"]["kind"])
        return
    if "kernel" not in given["energy"]:
        energy["kernel"] = "relu"
    elif energy["kernel"] != "relu":
        raise ConfigError("energy.kernel", "on the sphere the kernel is \"relu\" (the Sobolev kernel "
                          "is on the torus); set kernel = \"relu\" or leave it out", energy["kernel"])
    s = relu_s(dim)
    if "s" in given["energy"] and energy["s"] != s:
        raise ConfigError("energy.s", f"the ReLU kernel on S^{dim} behaves like s = (d + 3)/2 = {s:g}; "
                          "leave s out (it is set from the dimension)", energy["s"])
    energy["s"] = s
    if "kind" not in given["geometry"]:
        geometry["kind"] = "wfr"
    if sections["method"]["kind"] == "network" and {k: geometry[k] for k in NETWORK_GEOMETRY} != \
            NETWORK_GEOMETRY:
        raise ConfigError("geometry", "training a network by gradient descent is the WFR flow with "
                          "alpha = 2, beta = 1 (MATH.md section 6); remove [geometry] or set kind = "
                          "\"wfr\", alpha = 2.0, beta = 1.0",
                          f"kind = {geometry['kind']!r}, alpha = {geometry['alpha']:g}, "
                          f"beta = {geometry['beta']:g}")


def check_sphere_method(method: dict, given: Mapping, dim: int, initial_atoms: int | None) -> None:
    """``[method]`` on the sphere: kind by dimension, n, placement, summation, batch."""
    kind = method["kind"]
    if kind == "spectral":
        if dim != 1:
            raise ConfigError("method.kind", f"the spectral method on the sphere is for the circle "
                              f"(d = 1); on S^{dim} use \"particles\" or \"network\"", kind)
        if initial_atoms is not None:
            raise ConfigError("initial.kind", "atoms (particle positions) cannot start the spectral "
                              "method; set method.kind = \"particles\"")
        n = method["n"]
        if n % 2 or not 8 <= n <= 2**20:
            raise ConfigError("method.n", "the spectral grid needs an even n with 8 <= n <= 2^20; "
                              "e.g. n = 512", n)
    else:
        if initial_atoms is not None:
            if given.get("n") is not None and method["n"] != initial_atoms:
                raise ConfigError("method.n", f"the initial data has {initial_atoms} particles; remove "
                                  "method.n (it is taken from the data) or make them agree", method["n"])
            method["n"] = initial_atoms
        if not 1 <= method["n"] <= 10**7:
            raise ConfigError("method.n", f"{kind} runs need 1 <= n <= 10^7", method["n"])
    if "placement" not in given:
        method["placement"] = "quantile" if dim == 1 else "random"
    elif method["placement"] not in ("quantile", "random") or (dim > 1 and method["placement"] != "random"):
        allowed = "\"quantile\" or \"random\"" if dim == 1 else "\"random\" (i.i.d. samples)"
        raise ConfigError("method.placement", f"on S^{dim} placement is {allowed}", method["placement"])
    summation = method["summation"]
    if summation not in SPHERE_SUMMATIONS or (summation == "sorted" and dim > 1):
        raise ConfigError("method.summation", "on the sphere sums are \"sorted\" (exact, the circle "
                          "only), \"direct\" (dense blocks, any d) or \"auto\"", summation)
    if method["modes"] is not None:
        raise ConfigError("method.modes", "is for particles on T^2 and T^3; remove it", method["modes"])
    if method["batch"] is not None and kind != "network":
        raise ConfigError("method.batch", "is the minibatch size of network training (method.kind = "
                          "\"network\"); remove it", method["batch"])

