"""The WFR particle flow of the ReLU loss: exact solutions, an independent ODE, invariants, dissipation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.integrate

from kmdflow.domains import sphere
from kmdflow.flows.wfr import AtomMeasure, WFRParticleFlow
from kmdflow.kernels.relu import (
    CircleSeriesMeasure,
    ReluKernel,
    ZonalMeasure,
    population_loss,
    relu_mean,
)
from kmdflow.solve import simulate

TWO_PI = 2.0 * np.pi


def run(flow, t_end, n_saves=3, rtol=1e-10, **kw):
    times = np.linspace(0.0, t_end, n_saves)
    return simulate(flow, integrator="dopri5", times=times, snapshot_at=np.arange(n_saves), rtol=rtol, **kw)


def targets(dim):
    kernel = ReluKernel(dim)
    eta = np.eye(dim + 1)[-1]
    return {
        "atoms": AtomMeasure(sphere.sample_uniform(4, dim, 21), np.array([0.4, 0.2, 0.5, 0.3])),
        "uniform": ZonalMeasure.uniform(kernel, 1.2),
        "von_mises": ZonalMeasure.von_mises_fisher(kernel, eta, 3.0, 1.1),
    }


def problem(dim, target_name, m=12, seed=0, **kw):
    kernel = ReluKernel(dim)
    x = sphere.sample_uniform(m, dim, seed)
    w = np.random.default_rng(seed).uniform(0.5, 1.5, m) / m
    return WFRParticleFlow(kernel, x, w, targets(dim)[target_name] if target_name else None, **kw)


# -- exact solutions and an independent ODE ------------------------------------------------------

@pytest.mark.parametrize("dim, summation", [(1, "sorted"), (1, "dense"), (2, "auto"), (4, "auto")])
def test_fisher_rao_part_follows_the_logistic_law(dim, summation):
    # beta = 0, uniform target of mass M; n particles on one point act as one mass m:
    # V = a m - b with a = k(theta, theta) = 1/(2(d+1)), b = M c_d^2, so dm/dt = -alpha m (a m - b)
    kernel = ReluKernel(dim)
    alpha, mass_target, m0 = 1.5, 2.0, 0.3
    x = np.repeat(sphere.sample_uniform(1, dim, 3), 4, axis=0)
    flow = WFRParticleFlow(kernel, x, np.full(4, m0 / 4), ZonalMeasure.uniform(kernel, mass_target),
                           alpha=alpha, beta=0.0, summation=summation)
    traj = run(flow, 3.0, n_saves=4, rtol=1e-12)
    a, b = 1.0 / (2 * (dim + 1)), mass_target * relu_mean(dim) ** 2
    for t, total in zip(traj.times, traj.series["mass"]):
        exact = b * m0 / (a * m0 + (b - a * m0) * math.exp(-alpha * b * t))
        assert abs(total - exact) < 1e-10
    np.testing.assert_array_equal(traj.snapshots["positions"][-1], sphere.retract(x))    # beta = 0: no motion


def circle_reference_rhs(t, state, target_angles, target_weights, alpha, beta):
    """The particle ODE written in angles from MATH.md's circle profile, independently of kmdflow."""
    n = state.size // 2
    phi, logm = state[:n], state[n:]
    angles = np.concatenate([phi, target_angles])
    charges = np.concatenate([np.exp(logm), -target_weights])
    psi = np.mod(phi[:, None] - angles[None, :] + np.pi, TWO_PI) - np.pi    # in [-pi, pi)
    delta = np.abs(psi)
    k = ((np.pi - delta) * np.cos(delta) + np.sin(delta)) / (4 * np.pi)
    dk = -(np.pi - delta) * np.sin(psi) / (4 * np.pi)                      # d k / d phi
    return np.concatenate([-beta * dk @ charges, -alpha * k @ charges])


@pytest.mark.parametrize("summation", ["sorted", "dense"])
def test_circle_flow_matches_an_independent_angle_ode(summation):
    rng = np.random.default_rng(5)
    phi0 = rng.uniform(0, TWO_PI, 6)
    w0 = rng.uniform(0.1, 0.4, 6)
    y_angles, u = rng.uniform(0, TWO_PI, 3), np.array([0.5, 0.3, 0.6])
    alpha, beta = 2.0, 1.0
    flow = WFRParticleFlow(ReluKernel(1), sphere.angles_to_points(phi0), w0,
                           AtomMeasure(sphere.angles_to_points(y_angles), u), alpha=alpha, beta=beta,
                           summation=summation)
    traj = run(flow, 4.0, n_saves=3, rtol=1e-12)
    ref = scipy.integrate.solve_ivp(circle_reference_rhs, (0.0, 4.0), np.concatenate([phi0, np.log(w0)]),
                                    method="DOP853", rtol=1e-12, atol=1e-14, t_eval=[2.0, 4.0],
                                    args=(y_angles, u, alpha, beta))
    for i in range(2):
        positions = traj.snapshots["positions"][i + 1]
        np.testing.assert_allclose(positions, sphere.angles_to_points(ref.y[:6, i]), atol=1e-9)
        np.testing.assert_allclose(traj.snapshots["weights"][i + 1], np.exp(ref.y[6:, i]), rtol=1e-9)
    # the particles moved: this is not a trivial agreement
    assert np.max(np.abs(traj.snapshots["positions"][-1] - sphere.angles_to_points(phi0))) > 0.05


def test_sorted_and_dense_flows_agree_on_the_circle():
    kernel = ReluKernel(1)
    x = sphere.sample_uniform(300, 1, 2)
    w = np.full(300, 1.0 / 300)
    target = CircleSeriesMeasure(kernel, np.array([1.0, 0.3 - 0.1j, 0.2, 0.15j, -0.1]))
    flows = [WFRParticleFlow(kernel, x, w, target, summation=s) for s in ("sorted", "dense")]
    y = flows[0].initial_state()
    r0, r1 = flows[0].rhs(0.0, y), flows[1].rhs(0.0, y)
    assert np.max(np.abs(r0 - r1)) < 1e-12 * np.abs(r1).max()
    assert abs(flows[0].energy(y) - flows[1].energy(y)) < 1e-14
    # the loss agrees with the dense reference implementation of L(mu)
    assert abs(flows[0].energy(y) - population_loss(kernel, x, w, target)) < 1e-14


# -- invariants -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dim, target_name", [(1, "von_mises"), (1, "atoms"), (2, "von_mises"),
                                              (2, "uniform"), (3, "atoms")])
def test_invariants_sphere_positivity_monotone_loss(dim, target_name):
    flow = problem(dim, target_name, m=20, seed=dim)
    traj = run(flow, 5.0, n_saves=6, rtol=1e-9, record_step_energy=True)
    assert traj.status == "completed"
    for positions, weights in zip(traj.snapshots["positions"], traj.snapshots["weights"]):
        assert positions.shape == (20, dim + 1) and weights.shape == (20,)
        assert np.max(np.abs(np.linalg.norm(positions, axis=1) - 1.0)) < 1e-12
        assert np.all(weights > 0)
    np.testing.assert_allclose(traj.series["mass"], [w.sum() for w in traj.snapshots["weights"]], rtol=1e-14)
    steps = np.asarray(traj.step_energies)
    assert np.all(np.diff(steps) <= 1e-14 * steps[0])
    assert steps[-1] < 0.9 * steps[0]                      # and it does decrease
    assert flow.radius_drift(traj.final_state) < 1e-8      # retraction only removes a tiny drift


@pytest.mark.parametrize("dim, target_name", [(1, "von_mises"), (1, "atoms"), (1, None), (2, "atoms"),
                                              (2, "von_mises"), (3, "uniform")])
def test_dissipation_identity_pointwise(dim, target_name):
    # dL/dt along the flow, by a central difference of the loss along the rhs, equals -dissipation
    flow = problem(dim, target_name, m=15, seed=7, alpha=1.3, beta=0.8)
    y = flow.initial_state()
    f = flow.rhs(0.0, y)
    h = 1e-4
    slope = (flow.energy(y + h * f) - flow.energy(y - h * f)) / (2 * h)
    dissipation = flow.dissipation(y)
    assert dissipation > 0
    assert abs(slope + dissipation) < 1e-8 * dissipation          # measured 1e-12 .. 2e-10


@pytest.mark.parametrize("dim", [1, 2])
def test_dissipation_identity_integrated(dim):
    flow = problem(dim, "atoms", m=10, seed=3)
    traj = run(flow, 2.0, n_saves=81, rtol=1e-11)
    energy = np.asarray(traj.series["energy"])
    integral = scipy.integrate.simpson(traj.series["dissipation"], x=traj.times)
    assert abs((energy[0] - energy[-1]) - integral) < 1e-8 * integral      # measured 2e-12, 5e-11


def test_pure_wasserstein_conserves_mass_and_pure_fisher_rao_keeps_positions():
    flow = problem(2, "von_mises", alpha=0.0, beta=1.0)
    traj = run(flow, 2.0)
    assert np.ptp(traj.series["mass"]) == 0.0
    assert np.max(np.abs(traj.snapshots["positions"][-1] - traj.snapshots["positions"][0])) > 1e-3
    flow = problem(2, "von_mises", alpha=2.0, beta=0.0)
    traj = run(flow, 2.0)
    np.testing.assert_array_equal(traj.snapshots["positions"][-1], traj.snapshots["positions"][0])
    assert np.ptp(traj.series["mass"]) > 1e-3


def test_errors_name_the_argument():
    kernel = ReluKernel(2)
    x = sphere.sample_uniform(3, 2, 0)
    with pytest.raises(ValueError, match="weights must be 3 positive numbers"):
        WFRParticleFlow(kernel, x, np.array([0.1, -0.1, 0.2]))
    with pytest.raises(ValueError, match=r"positions must be points of S\^2 with shape \(m, 3\)"):
        WFRParticleFlow(kernel, np.eye(2), np.ones(2))
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        WFRParticleFlow(kernel, x, np.ones(3), alpha=-1.0)
    with pytest.raises(ValueError, match="target must be None, AtomMeasure"):
        WFRParticleFlow(kernel, x, np.ones(3), target=(x, np.ones(3)))
    with pytest.raises(ValueError, match="target weights must be 2 positive numbers"):
        AtomMeasure(x[:2], np.array([1.0, 0.0]))
