"""The error check of ``etdrk4`` and what it needs from the stepper, against independent answers.

- The check is ``y_new - Q``, ``Q`` the exponential quadrature of the interpolant of ``N`` through
  the step's three nodes and the previous step's two; here ``Q`` is rebuilt from a quartic fitted
  through ``N`` at those five times and integrated against ``e^(L (t + h - tau))`` by mpmath.
- The estimate has power ``h^5`` and tracks the true error of the accepted two half steps.
- The step memory: carried from step to step, kept across a snapped save time, checkpointed and
  restored bit for bit (stepper, :func:`kmdflow.solve.simulate`, and the ``.npz`` checkpoint).
- The step ladder: nearest-rung rounding, retries that round down, and no bias in the steps.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from kmdflow.integrators import OdeProblem, advance, make_stepper
from kmdflow.integrators.adaptive import Stepper, ladder_step, rms_norm
from kmdflow.integrators.exponential import (
    ETDRK4,
    LOOKBACK_RATIO,
    QUADRATURE_STEPS_PER_OCTAVE,
    ExponentialScheme,
    etd_step,
)

# the order-test system of tests/test_exponential.py: stiff (-1e3) and mild complex rates,
# Bernoulli, forced and non-autonomous components, all with closed forms
from tests.test_exponential import (
    EPS_ADAPT,
    L_ADAPT,
    L_ORDER,
    MILD,
    SAVES,
    Y_ADAPT,
    Y_ORDER,
    _bernoulli,
    _max_relative_error,
    _run_to_saves,
    exact_order,
    nonlinear_order,
    run_order_problem,
)

PROBLEM = OdeProblem(rhs=nonlinear_order, linear=L_ORDER)


def _previous_step(t0, h_prev):
    """An accepted etdrk4 step of length ``h_prev`` that ends at ``t0`` (from the exact state)."""
    y_prev = exact_order(t0 - h_prev)
    return advance(ETDRK4, PROBLEM, t0 - h_prev, y_prev, h_prev), y_prev


def _quartic_rule(t0, y0, h, times, values):
    """``e^(L h) y0 + int_0^h e^(L (h - u)) p(t0 + u) du``, ``p`` the quartic through
    ``(times, values)`` per component, integrated by mpmath (30 digits)."""
    s = (np.asarray(times) - t0) / h
    out = []
    with mp.workdps(30):
        for k, rate in enumerate(L_ORDER):
            coefficients = np.linalg.solve(np.vander(s, 5, increasing=True), values[:, k])
            z = mp.mpc(complex(rate * h))
            c = [mp.mpc(complex(v)) for v in coefficients]
            integral = mp.quad(lambda x: mp.exp(z * (1 - x)) * mp.fsum(
                ck * x**j for j, ck in enumerate(c)), [0, 1])
            out.append(complex(mp.exp(z) * mp.mpc(complex(y0[k])) + h * integral))
    return np.array(out)


def test_check_is_the_error_against_an_independent_quartic_quadrature():
    t0, h_prev, h = 0.3, 0.05, 0.04
    previous, y_prev = _previous_step(t0, h_prev)
    y0 = previous.y
    res = advance(ETDRK4, PROBLEM, t0, y0, h, k_first=previous.k_last, memory=previous.memory)
    # the accepted state: two ETDRK4 half steps
    y_mid = etd_step(ETDRK4, L_ORDER, nonlinear_order, t0, y0, h / 2)
    y_new = etd_step(ETDRK4, L_ORDER, nonlinear_order, t0 + h / 2, y_mid, h / 2)
    np.testing.assert_allclose(res.y, y_new, rtol=1e-14)
    # N at the five nodes, from states computed here
    y_prev_mid = etd_step(ETDRK4, L_ORDER, nonlinear_order, t0 - h_prev, y_prev, h_prev / 2)
    times = [t0 - h_prev, t0 - h_prev / 2, t0, t0 + h / 2, t0 + h]
    states = [y_prev, y_prev_mid, y0, y_mid, y_new]
    values = np.array([nonlinear_order(t, y) for t, y in zip(times, states)])
    reference = _quartic_rule(t0, y0, h, times, values)
    decay = max(1.0, rms_norm(y0) / rms_norm(y_new))
    expected = (y_new - reference) * decay
    assert rms_norm(expected) > 1e-11  # a real error, not round-off
    np.testing.assert_allclose(res.error, expected, rtol=1e-6, atol=1e-15)
    # the step hands on its first stage and its own two nodes
    np.testing.assert_array_equal(res.k_last, nonlinear_order(t0 + h, res.y))
    assert res.memory[0] == h
    np.testing.assert_array_equal(res.memory[1], values[2])
    np.testing.assert_allclose(res.memory[2], values[3], rtol=1e-14)


def test_without_a_usable_previous_step_the_check_is_the_exponential_simpson_rule():
    t0, h = 0.3, 0.04
    y0 = exact_order(t0)
    first = advance(ETDRK4, PROBLEM, t0, y0, h)
    y_mid = etd_step(ETDRK4, L_ORDER, nonlinear_order, t0, y0, h / 2)
    z = L_ORDER * h
    p1, p2, p3 = (np.array([complex(mp.hyp1f1(1, k + 1, complex(v)) / mp.factorial(k))
                            for v in z]) for k in (1, 2, 3))
    simpson = np.exp(z) * y0 + h * ((p1 - 3 * p2 + 4 * p3) * nonlinear_order(t0, y0)
                                    + (4 * p2 - 8 * p3) * nonlinear_order(t0 + h / 2, y_mid)
                                    + (4 * p3 - p2) * nonlinear_order(t0 + h, first.y))
    decay = max(1.0, rms_norm(y0) / rms_norm(first.y))
    np.testing.assert_allclose(first.error, (first.y - simpson) * decay, rtol=1e-7, atol=1e-15)
    # a previous step outside the ratio window is not used
    for h_prev in (h * LOOKBACK_RATIO * 1.01, h / LOOKBACK_RATIO / 1.01):
        previous, _ = _previous_step(t0, h_prev)
        far = advance(ETDRK4, PROBLEM, t0, y0, h, memory=previous.memory)
        np.testing.assert_array_equal(far.error, first.error)


def test_check_has_power_five_and_tracks_the_true_error():
    t0 = 0.3
    steps = 0.02 * 2.0 ** (-np.arange(5) / 2)
    estimates, mismatch = [], []
    for h in steps:
        previous, _ = _previous_step(t0, h)
        res = advance(ETDRK4, PROBLEM, t0, previous.y, h, memory=previous.memory)
        true_error = exact_order(t0 + h) - res.y  # from the (nearly exact) state at t0
        start_error = exact_order(t0) - previous.y
        true_error -= np.exp(L_ORDER * h) * start_error  # the part carried in from the start
        estimates.append(rms_norm(res.error[MILD]))
        mismatch.append(rms_norm(res.error[MILD] + true_error[MILD]) / rms_norm(true_error[MILD]))
    slope = float(np.polyfit(np.log(steps), np.log(estimates), 1)[0])
    assert abs(slope - ETDRK4.error_estimate_order) < 0.25
    # y_new - Q = -(error of y_new) + O(h^6): the relative mismatch falls like h (the check is
    # conservative at larger steps, where Q's own O(h^6) error is the larger one)
    assert mismatch[-1] < 0.1
    assert abs(float(np.polyfit(np.log(steps), np.log(mismatch), 1)[0]) - 1) < 0.25


def test_memory_is_carried_from_step_to_step_and_across_a_snapped_save_time():
    stepper = make_stepper("etdrk4", nonlinear_order, linear=L_ORDER, rtol=1e-6)
    t, y, _ = stepper.step(0.0, Y_ORDER.copy(), 1.0)
    assert stepper._cache[3] is not None
    calls = stepper.n_rhs
    # the driver snaps a time within 1e-12 of a save time onto it: N(t, y) and the memory of
    # the step that ended there are still reused (no evaluation at the start)
    t_snapped = t * (1 + 1e-13)
    _, _, info = stepper.step(t_snapped, y, 1.0)
    trials = 1 + info["rejected"]
    assert stepper.n_rhs - calls == ETDRK4.evaluations_per_trial * trials
    # the step received the memory of the one before: it hands on both steps' nodes
    assert len(stepper.checkpoint()) == 5 + 6
    # a different state at the same time is not served from the cache
    calls = stepper.n_rhs
    _, _, info = stepper.step(t_snapped, y * (1 + 1e-12), 1.0)
    assert stepper.n_rhs - calls == 1 + ETDRK4.evaluations_per_trial * (1 + info["rejected"])


def test_rhs_count_and_accuracy_of_etdrk4():
    stepper, _, y = run_order_problem("etdrk4")
    trials = stepper.n_accepted + stepper.n_rejected
    # 2 for the first-step heuristic, N(0, y0) once; then 8 per trial (the last is the next
    # step's N(t, y))
    assert stepper.n_rhs == 3 + 8 * trials
    exact = exact_order(2.0)
    # local control of the accepted order-4 solution: global error ~ rtol^(4/5)
    assert rms_norm(y - exact) / rms_norm(exact) < 10 * 1e-6 ** 0.8


def _states(stepper, t, y, count):
    out = []
    for _ in range(count):
        t, y, _ = stepper.step(t, y, np.inf)
        out.append((t, y))
    return out


def test_checkpoint_and_restore_continue_bit_for_bit():
    def rhs(t, y):
        return EPS_ADAPT * y * y

    def fresh():
        return make_stepper("etdrk4", rhs, linear=L_ADAPT, rtol=1e-8, norm="modewise")

    reference = fresh()
    t, y = 0.0, Y_ADAPT.copy()
    head = _states(reference, t, y, 12)
    tail = _states(reference, *head[-1], 20)
    first = fresh()
    head_again = _states(first, t, y, 12)
    state = first.checkpoint()
    assert {"memory.0", "memory.1", "memory.2"} <= set(state)
    assert isinstance(state["memory.0"], float) and state["memory.1"].shape == Y_ADAPT.shape
    resumed = fresh()
    resumed.restore(state, t=head_again[-1][0], y=head_again[-1][1])
    for (t_a, y_a), (t_b, y_b) in zip(tail, _states(resumed, *head_again[-1], 20)):
        assert t_a == t_b
        np.testing.assert_array_equal(y_a, y_b)
    assert resumed.n_rhs == reference.n_rhs + 1  # the first stage is recomputed, nothing else


def test_simulate_resumes_an_etdrk4_run_bit_for_bit(tmp_path):
    from kmdflow.experiments.build import build_problem
    from kmdflow.experiments.config import load_config
    from kmdflow.io import read_checkpoint, write_checkpoint
    from kmdflow.solve import simulate

    config = load_config({
        "energy": {"s": 2.0},
        "initial": {"kind": "perturbation", "amplitude": 0.05, "decay": 2.0, "seed": 3},
        "method": {"kind": "spectral", "n": 64, "integrator": "etdrk4"},
        "time": {"t_end": 1e3, "rtol": 1e-8}})
    flow = build_problem(config).flow
    times = np.concatenate([[0.0], np.logspace(-1, 3, 13)])
    path = tmp_path / "checkpoint.npz"

    def keep(state):
        if state["index"] == 7:  # written as the run goes, like kmdflow run does
            assert any(key.startswith("memory.") for key in state["stepper"])
            write_checkpoint(state, path, "hash")

    whole = simulate(flow, integrator="etdrk4", times=times, snapshot_at=np.array([13]),
                     rtol=1e-8, checkpoint=keep, checkpoint_every=np.inf)
    loaded, _ = read_checkpoint(path)
    assert len(loaded["trajectory"].times) == 7
    resumed = simulate(flow, integrator="etdrk4", times=times, snapshot_at=np.array([13]),
                       rtol=1e-8, resume=loaded)
    np.testing.assert_array_equal(resumed.final_state, whole.final_state)
    assert resumed.series["energy"] == whole.series["energy"]
    assert resumed.n_steps == whole.n_steps and resumed.n_rhs == whole.n_rhs + 1  # N(t, y) again


def test_nearest_rung_and_retries_that_round_down():
    rng = np.random.default_rng(4)
    for m in (1, 2, 16):
        for dt in 10.0 ** rng.uniform(-9, 9, 300):
            rung = ladder_step(dt, m, nearest=True)
            j = m * np.log2(rung)
            assert abs(j - round(j)) < 1e-9
            assert 2.0 ** (-0.5 / m) * (1 - 1e-12) <= rung / dt <= 2.0 ** (0.5 / m) * (1 + 1e-12)
            assert ladder_step(rung, m, nearest=True) == rung
    # a problem that rejects steps: every retry is shorter than the step that failed
    stepper = make_stepper("etdrk4", lambda t, y: 0.5 * y * y, linear=np.array([-1.0]),
                           rtol=1e-10, dt_initial=4.0)
    tries = []
    original = stepper._trial

    def spy(t, y, dt, k_first, memory=None):
        tries.append(dt)
        return original(t, y, dt, k_first, memory)

    stepper._trial = spy
    stepper.step(0.0, np.array([0.9]), np.inf)
    assert stepper.n_rejected >= 1
    assert all(b < a for a, b in zip(tries[:-1], tries[1:]))


@pytest.mark.parametrize("rtol", [1e-6, 1e-9])
def test_the_ladder_does_not_bias_the_steps(rtol):
    """Rounded to the nearest rung, with the controller fed the step it asked for, the steps on a
    ladder of two rungs per octave track those of the same scheme without a ladder."""
    def rhs(t, y):
        return EPS_ADAPT * y * y

    free = ExponentialScheme("etdrk4-free", order=4, stages=4, formula="etdrk4",
                             estimate="quadrature")
    counts, errors = [], []
    exact = np.array([_bernoulli(L_ADAPT, EPS_ADAPT, Y_ADAPT, t) for t in SAVES])
    for scheme in (ETDRK4, free):
        stepper = Stepper(scheme, rhs, linear=L_ADAPT, rtol=rtol)
        errors.append(_max_relative_error(_run_to_saves(stepper, Y_ADAPT, SAVES), exact))
        counts.append(stepper.n_accepted)
    assert QUADRATURE_STEPS_PER_OCTAVE == 2
    assert abs(counts[0] / counts[1] - 1) < 0.1
    assert errors[0] < 100 * rtol and errors[1] < 100 * rtol


def test_a_short_previous_step_is_passed_over_for_the_one_before():
    """After a step clipped at a save time, the check uses the step before it."""
    t0, h, h_short, h_before = 0.3, 0.04, 1e-4, 0.05
    t1 = t0 - h_short
    before, y_before = _previous_step(t1, h_before)
    short = advance(ETDRK4, PROBLEM, t1, before.y, h_short, memory=before.memory)
    assert len(short.memory) == 6  # the short step and the one before it
    res = advance(ETDRK4, PROBLEM, t0, short.y, h, memory=short.memory)
    y_mid = etd_step(ETDRK4, L_ORDER, nonlinear_order, t0, short.y, h / 2)
    y_before_mid = etd_step(ETDRK4, L_ORDER, nonlinear_order, t1 - h_before, y_before,
                            h_before / 2)
    times = [t1 - h_before, t1 - h_before / 2, t0, t0 + h / 2, t0 + h]
    states = [y_before, y_before_mid, short.y, y_mid, res.y]
    values = np.array([nonlinear_order(t, y) for t, y in zip(times, states)])
    decay = max(1.0, rms_norm(short.y) / rms_norm(res.y))
    expected = (res.y - _quartic_rule(t0, short.y, h, times, values)) * decay
    np.testing.assert_allclose(res.error, expected, rtol=1e-6, atol=1e-15)


def test_steps_stay_within_dt_max_on_the_ladder():
    for dt_max in (1.2, 0.3, 1.17):
        for name in ("etdrk4", "etdrk43"):
            stepper = make_stepper(name, lambda t, y: 0.1 * y * y, linear=np.array([-0.1, -1e-3]),
                                   rtol=1e-4, dt_max=dt_max)
            t, y = 0.0, np.array([0.2, 0.1])
            steps = []
            while t < 30.0:
                t, y, info = stepper.step(t, y, 30.0 - t)
                steps.append(info["dt"])
            assert max(steps) <= dt_max
            assert max(steps) > 0.5 * dt_max  # the bound is reached, not avoided


def test_zero_dimensional_and_mixed_kind_states():
    # y' = -y + i (a real state driven by a complex forcing becomes complex): closed form
    stepper = make_stepper("etdrk4", lambda t, y: 1j * np.ones_like(y, dtype=complex),
                           linear=np.array(-1.0), rtol=1e-10)
    t, y = 0.0, np.array(0.5)
    while t < 3.0:
        t, y, _ = stepper.step(t, y, 3.0 - t)
    exact = 0.5 * np.exp(-3.0) + 1j * (1 - np.exp(-3.0))
    assert np.ndim(y) == 0 and abs(y - exact) < 1e-9


def test_coefficients_of_a_view_follow_its_base_and_two_linear_parts_share_the_cache():
    base = np.array([-1.0, -2.0])
    view = np.broadcast_to(base, (2,))  # read-only, but its base can change
    h = 0.5
    first = etd_step(ETDRK4, view, lambda t, y: np.zeros_like(y), 0.0, np.ones(2), h)
    np.testing.assert_allclose(first, np.exp(h * base), rtol=1e-15)
    base[:] = [-5.0, -7.0]
    second = etd_step(ETDRK4, view, lambda t, y: np.zeros_like(y), 0.0, np.ones(2), h)
    np.testing.assert_allclose(second, np.exp(h * base), rtol=1e-15)

    # two steppers with different linear parts, stepping in turn, keep their own sets
    def misses(interleaved):
        ETDRK4.cache.clear()
        before = ETDRK4.cache.misses
        steppers = [make_stepper("etdrk4", lambda t, y: EPS_ADAPT * y * y, linear=c * L_ADAPT,
                                 rtol=1e-8) for c in (1.0, 2.0)]
        states = [(0.0, Y_ADAPT.copy()), (0.0, Y_ADAPT.copy())]
        order = [0, 1] * 40 if interleaved else [0] * 40 + [1] * 40
        for i in order:
            t, y = states[i]
            t, y, _ = steppers[i].step(t, y, np.inf)
            states[i] = (t, y)
        return ETDRK4.cache.misses - before

    assert misses(interleaved=True) == misses(interleaved=False)
