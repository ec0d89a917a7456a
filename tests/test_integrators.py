"""Tests of kmdflow.integrators against answers derived independently of the code.

- Order conditions come from rooted trees generated here (Butcher's theory): a scheme of order p
  satisfies ``b . Phi(tau) = 1 / gamma(tau)`` for every tree with at most p nodes.
- Convergence orders are fitted against exact solutions of a nonlinear, non-autonomous, complex
  test system.
- The step sizes the controller settles on for ``y' = -y`` are derived from the stability
  function of the tableau and the controller's steady state.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmdflow.integrators import (
    SCHEMES,
    ButcherTableau,
    IntegratorError,
    NonFiniteState,
    Stepper,
    StepSizeUnderflow,
    get_scheme,
    make_stepper,
    register_scheme,
    rk_step,
)
from kmdflow.integrators.error_control import error_norm, rms_norm

#: Runge-Kutta schemes (exponential schemes have their own tests in test_exponential.py)
RK_SCHEMES = sorted(name for name, s in SCHEMES.items() if isinstance(s, ButcherTableau))
EMBEDDED = [name for name in RK_SCHEMES if SCHEMES[name].embedded]

# ---------------------------------------------------------------------------------------------
# Rooted trees and order conditions (independent of the library)
# ---------------------------------------------------------------------------------------------


def _canonical(children):
    return tuple(sorted(children))


def _grow(tree):
    """All trees obtained by attaching one leaf to some node of ``tree``."""
    out = {_canonical(tree + ((),))}
    for i, child in enumerate(tree):
        rest = tree[:i] + tree[i + 1:]
        for grown in _grow(child):
            out.add(_canonical(rest + (grown,)))
    return out


def rooted_trees(max_order):
    """Dict order -> list of rooted trees (a tree is the sorted tuple of its subtrees)."""
    trees = {1: [()]}
    for n in range(2, max_order + 1):
        found = set()
        for tree in trees[n - 1]:
            found |= _grow(tree)
        trees[n] = sorted(found)
    return trees


def _size(tree):
    return 1 + sum(_size(c) for c in tree)


def _gamma(tree):
    return _size(tree) * math.prod(_gamma(c) for c in tree)


def _stage_weights(tree, a):
    """Vector Phi_i(tree): product over subtrees of (A Phi(subtree)); leaves give ones."""
    vec = np.ones(a.shape[0])
    for child in tree:
        vec = vec * (a @ _stage_weights(child, a))
    return vec


def order_defects(a, b, max_order):
    """Largest |b . Phi(tau) - 1/gamma(tau)| over trees of each order 1..max_order."""
    trees = rooted_trees(max_order)
    return {n: max(abs(b @ _stage_weights(t, a) - 1.0 / _gamma(t)) for t in trees[n])
            for n in range(1, max_order + 1)}


def test_tree_counts_match_known_sequence():
    # number of rooted trees with n nodes: OEIS A000081
    trees = rooted_trees(6)
    assert [len(trees[n]) for n in range(1, 7)] == [1, 1, 2, 4, 9, 20]


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_registry_holds_the_required_schemes():
    expected = {"euler": 1, "heun": 2, "ssprk3": 3, "bs32": 3, "rk4": 4, "dopri5": 5}
    for name, order in expected.items():
        assert SCHEMES[name].order == order
        assert get_scheme(name) is SCHEMES[name]
    assert SCHEMES["bs32"].error_order == 2 and SCHEMES["bs32"].fsal
    assert SCHEMES["dopri5"].error_order == 4 and SCHEMES["dopri5"].fsal
    assert {"bs32", "dopri5"} <= set(EMBEDDED)


@pytest.mark.parametrize("name", RK_SCHEMES)
def test_order_conditions_hold_exactly_to_the_declared_order(name):
    tab = SCHEMES[name]
    defects = order_defects(tab.a, tab.b, tab.order + 1)
    for n in range(1, tab.order + 1):
        assert defects[n] < 1e-14, (name, n, defects[n])
    # the declared order is not an underestimate
    assert defects[tab.order + 1] > 1e-4


@pytest.mark.parametrize("name", EMBEDDED)
def test_embedded_weights_have_their_declared_order(name):
    tab = SCHEMES[name]
    defects = order_defects(tab.a, tab.b_low, tab.error_order + 1)
    for n in range(1, tab.error_order + 1):
        assert defects[n] < 1e-14
    assert defects[tab.error_order + 1] > 1e-4


@pytest.mark.parametrize("name", RK_SCHEMES)
def test_tableau_is_explicit_and_consistent(name):
    tab = SCHEMES[name]
    assert np.all(np.triu(tab.a) == 0.0)
    np.testing.assert_allclose(tab.a.sum(axis=1), tab.c, atol=1e-15)
    if tab.fsal:
        np.testing.assert_array_equal(tab.a[-1], tab.b)
        assert tab.c[-1] == 1.0


def test_get_scheme_names_the_key_and_suggests_near_miss():
    with pytest.raises(ValueError, match=r"integrator: unknown scheme 'dopri'; did you mean "
                                         r"'dopri5'\?.*bs32, dopri5, etd1, etdrk2, etdrk4, etdrk43, euler"):
        get_scheme("dopri")
    with pytest.raises(ValueError, match="integrator: unknown scheme 'zzz'; valid names"):
        get_scheme("zzz")


def test_tableau_validation_and_registration():
    with pytest.raises(ValueError, match="strictly lower triangular"):
        ButcherTableau("implicit", a=[[0.5]], b=[1.0], c=[0.5], order=1)
    with pytest.raises(ValueError, match="fsal=True needs"):
        ButcherTableau("bad", a=[[0.0, 0.0], [1.0, 0.0]], b=[0.5, 0.5], c=[0.0, 1.0],
                       order=2, fsal=True)
    with pytest.raises(ValueError, match="already registered"):
        register_scheme(SCHEMES["rk4"])
    with pytest.raises(AttributeError):
        SCHEMES["rk4"].order = 7
    with pytest.raises(ValueError):
        SCHEMES["rk4"].b[0] = 1.0  # arrays are read-only


# ---------------------------------------------------------------------------------------------
# Fixed-step convergence on an exact solution
# ---------------------------------------------------------------------------------------------

Y0 = np.array([[0.2, 0.25 + 0.25j], [0.5 - 0.3j, 0.7 + 0.2j]])


def rhs_test(t, y):
    """Logistic, Riccati (complex), y' = cos(t) y and y' = -y + sin t, on a (2, 2) complex state."""
    out = np.empty_like(y)
    out[0, 0] = y[0, 0] * (1.0 - y[0, 0])
    out[0, 1] = -y[0, 1] ** 2
    out[1, 0] = np.cos(t) * y[1, 0]
    out[1, 1] = -y[1, 1] + np.sin(t)
    return out


def flow_test(t0, y0, t):
    """Exact solution of :func:`rhs_test` from ``(t0, y0)``."""
    h = t - t0
    out = np.empty_like(y0)
    out[0, 0] = 1.0 / (1.0 + (1.0 / y0[0, 0] - 1.0) * np.exp(-h))
    out[0, 1] = y0[0, 1] / (1.0 + y0[0, 1] * h)
    out[1, 0] = y0[1, 0] * np.exp(np.sin(t) - np.sin(t0))

    def particular(s):
        return 0.5 * (np.sin(s) - np.cos(s))

    out[1, 1] = (y0[1, 1] - particular(t0)) * np.exp(-h) + particular(t)
    return out


def fitted_slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


@pytest.mark.parametrize("name", RK_SCHEMES)
def test_fixed_step_global_order(name):
    tab = SCHEMES[name]
    t_end = 2.0
    # five step counts in ratio sqrt(2); higher orders start finer so the fit is asymptotic and
    # the finest error (>~1e-13) stays above round-off
    n_start = 16 if tab.order <= 3 else 32
    counts = np.round(n_start * 2.0 ** (np.arange(5) / 2)).astype(int)
    errors = []
    for n in counts:
        dt = t_end / n
        y = Y0.copy()
        for i in range(n):
            y = rk_step(tab, rhs_test, i * dt, y, dt).y
        errors.append(np.abs(y - flow_test(0.0, Y0, t_end)).max())
    assert min(errors) > 1e-13
    slope = fitted_slope(t_end / counts, errors)
    assert abs(slope - tab.order) < 0.2, (name, slope, errors)


@pytest.mark.parametrize("name", RK_SCHEMES)
def test_rk_step_keeps_shape_and_dtype(name):
    tab = SCHEMES[name]
    res = rk_step(tab, rhs_test, 0.0, Y0, 0.01)
    assert res.y.shape == Y0.shape and res.y.dtype == np.complex128
    y_real = np.linspace(0.1, 0.9, 12).reshape(3, 4)
    res = rk_step(tab, lambda t, y: y * (1 - y), 0.0, y_real, 0.01)
    assert res.y.shape == (3, 4) and res.y.dtype == np.float64
    assert (res.error is None) == (not tab.embedded)
    np.testing.assert_array_equal(y_real, np.linspace(0.1, 0.9, 12).reshape(3, 4))  # untouched


@pytest.mark.parametrize("name", EMBEDDED)
def test_error_estimate_order_and_accuracy(name):
    tab = SCHEMES[name]
    t0 = 0.3
    steps = 0.1 * 2.0 ** (-np.arange(5) / 2)
    estimates, mismatch = [], []
    for h in steps:
        res = rk_step(tab, rhs_test, t0, Y0, h)
        exact = flow_test(t0, Y0, t0 + h)
        y_low = res.y - res.error
        estimates.append(rms_norm(res.error))
        # the estimate should equal the true local error of the embedded solution to leading order
        mismatch.append(rms_norm((exact - y_low) - res.error) / rms_norm(res.error))
    slope = fitted_slope(steps, estimates)
    assert abs(slope - tab.error_estimate_order) < 0.2, (name, slope)
    assert mismatch[-1] < 0.1
    assert mismatch[-1] < mismatch[0]


@pytest.mark.parametrize("name", [n for n in RK_SCHEMES if SCHEMES[n].fsal])
def test_fsal_stage_is_the_rhs_at_the_new_state(name):
    res = rk_step(SCHEMES[name], rhs_test, 0.4, Y0, 0.05)
    np.testing.assert_array_equal(res.k_last, rhs_test(0.45, res.y))


# ---------------------------------------------------------------------------------------------
# Stepper: bookkeeping, clipping, FSAL reuse
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rk4", "dopri5"])
def test_fixed_stepper_reproduces_the_plain_loop(name):
    stepper = make_stepper(name, rhs_test, dt_fixed=0.1)
    t, y = 0.0, Y0.copy()
    t_ref, y_ref = 0.0, Y0.copy()
    for _ in range(10):
        t, y, info = stepper.step(t, y, 5.0)
        y_ref = rk_step(SCHEMES[name], rhs_test, t_ref, y_ref, 0.1).y
        t_ref += 0.1
        assert info["dt"] == 0.1 and not info["clipped"]
    np.testing.assert_array_equal(y, y_ref)
    assert stepper.n_accepted == 10 and stepper.n_rejected == 0
    stages = SCHEMES[name].stages
    # FSAL schemes evaluate s - 1 new stages per step after the first
    expected = 10 * stages if not SCHEMES[name].fsal else stages + 9 * (stages - 1)
    assert stepper.n_rhs == expected


@pytest.mark.parametrize("name", EMBEDDED)
def test_adaptive_rhs_count_and_fsal_reuse(name):
    stepper = make_stepper(name, rhs_test, rtol=1e-7)
    t, y = 0.0, Y0.copy()
    while t < 3.0:
        t, y, _ = stepper.step(t, y, 3.0 - t)
    s = SCHEMES[name].stages
    # 2 calls for the initial-step heuristic (f0 is reused as the first stage), then s - 1 new
    # stages per trial step: FSAL across accepted steps, first stage shared by retries
    assert stepper.n_rhs == 2 + (s - 1) * (stepper.n_accepted + stepper.n_rejected)
    # a different state (not the one returned) is not served from the cache
    before = stepper.n_rhs
    stepper.step(t, y * (1 + 1e-9), 0.01)
    assert stepper.n_rhs - before == s


@pytest.mark.parametrize("name", EMBEDDED)
def test_adaptive_global_error_follows_rtol(name):
    tab = SCHEMES[name]
    t_end = 3.0
    tolerances = [1e-7, 1e-8, 1e-9, 1e-10]  # looser ones take too few steps to be asymptotic
    errors = []
    exact = flow_test(0.0, Y0, t_end)
    for rtol in tolerances:
        stepper = make_stepper(name, rhs_test, rtol=rtol, atol=0.0)
        t, y = 0.0, Y0.copy()
        while t < t_end:
            t, y, _ = stepper.step(t, y, t_end - t)
        errors.append(rms_norm(y - exact) / rms_norm(exact))
    errors = np.array(errors)
    assert np.all(np.diff(errors) < 0)
    assert np.all(errors < 10 * np.array(tolerances))
    assert np.all(errors > 1e-3 * np.array(tolerances))
    # controlling the local error of the order-q estimate gives h ~ tol^(1/(q+1)); the propagated
    # order-p solution then has global error ~ tol^(p/(q+1))
    predicted = tab.order / tab.error_estimate_order
    assert abs(fitted_slope(tolerances, errors) - predicted) < 0.1


def _decay(t, y):
    return -y


def test_never_steps_past_the_limit_and_lands_on_it():
    stepper = make_stepper("dopri5", rhs_test, rtol=1e-8)
    save_times = [1e-7, 0.013, 0.5, 0.5 + 1e-12, 1.7, 2.0]
    t, y = 0.0, Y0.copy()
    n_clipped = 0
    for t_save in save_times:
        while t < t_save:
            dt_limit = t_save - t
            t_old = t
            t, y, info = stepper.step(t, y, dt_limit)
            assert info["dt"] <= dt_limit
            assert t == t_old + info["dt"]
            if info["clipped"]:
                n_clipped += 1
                assert info["dt"] == dt_limit and t == t_old + dt_limit
            assert t <= t_save or t == t_old + dt_limit
        assert abs(t - t_save) <= 4 * np.spacing(t_save)
        t = t_save
    assert n_clipped >= len(save_times)
    np.testing.assert_allclose(y, flow_test(0.0, Y0, 2.0), rtol=1e-7)


def test_a_clipped_step_does_not_shrink_the_next_step():
    stepper = make_stepper("dopri5", _decay, rtol=1e-8, atol=0.0)
    t, y = 0.0, np.array([1.0])
    for _ in range(20):
        t, y, _ = stepper.step(t, y)
    before = stepper.dt_next
    t, y, info = stepper.step(t, y, 1e-9)
    assert info["clipped"] and info["dt"] == 1e-9
    assert stepper.dt_next >= before


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=1e-9, max_value=2.0), min_size=1, max_size=12))
def test_step_respects_arbitrary_limits(limits):
    stepper = make_stepper("bs32", rhs_test, rtol=1e-6)
    t, y = 0.0, Y0.copy()
    for dt_limit in limits:
        t_old = t
        t, y, info = stepper.step(t, y, dt_limit)
        assert 0 < info["dt"] <= dt_limit
        assert t == t_old + info["dt"]
        if info["clipped"]:
            assert info["dt"] == dt_limit
    np.testing.assert_allclose(y, flow_test(0.0, Y0, t), rtol=1e-4)


def test_dt_max_caps_every_step():
    stepper = make_stepper("dopri5", _decay, rtol=1e-6, atol=1e-12, dt_max=0.25)
    t, y = 0.0, np.array([1.0])
    dts = []
    while t < 30.0:
        t, y, info = stepper.step(t, y, 30.0 - t)
        dts.append(info["dt"])
    assert max(dts) <= 0.25
    assert dts[-2] == 0.25  # the step has grown to the cap


# ---------------------------------------------------------------------------------------------
# Step-size behaviour derived from the stability function
# ---------------------------------------------------------------------------------------------


def _linear_response(tab, z, weights):
    """z * weights^T (I - z A)^{-1} 1: the increment of a step of y' = lambda y, z = lambda h."""
    s = tab.stages
    return z * weights @ np.linalg.solve(np.eye(s) - z * tab.a, np.ones(s))


def _bisect(f, lo, hi, iters=200):
    """Root of f on [lo, hi] with f(lo) < 0 < f(hi)."""
    assert f(lo) < 0 < f(hi)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < 0 else (lo, mid)
    return 0.5 * (lo + hi)


@pytest.mark.parametrize("name", EMBEDDED)
def test_relative_control_settles_on_the_derived_step(name):
    # y' = -y with atol = 0: the scaled error of a step of size h is |E(-h)| / rtol (the state
    # decays, so max(|y|, |y_new|) = |y|), independent of t. A PI controller with constant error
    # e settles where safety * e^(-(alpha - beta)/k) = 1.
    tab = SCHEMES[name]
    rtol = 1e-8
    stepper = make_stepper(name, _decay, rtol=rtol, atol=0.0)
    c, k = stepper.controller, tab.error_estimate_order
    e_star = c.safety ** (k / (c.alpha - c.beta))
    h_star = _bisect(lambda h: abs(_linear_response(tab, -h, tab.error_weights)) - rtol * e_star,
                     1e-6, 0.5)  # |E(-h)| increases on this interval (bs32's vanishes at h = 1)
    t, y = 0.0, np.array([1.0])
    while t < 20.0:
        t, y, info = stepper.step(t, y)
    assert stepper.n_rejected == 0
    assert abs(info["dt"] / h_star - 1) < 1e-3
    assert abs(info["error_norm"] / e_star - 1) < 1e-2
    # relative accuracy survives the decay to e^-20
    assert abs(y[0] / np.exp(-t) - 1) < 100 * rtol


@pytest.mark.parametrize("name", EMBEDDED)
def test_step_grows_to_the_stability_limit(name):
    # with atol > 0 the accuracy demand vanishes once |y| << atol / rtol; the step then grows
    # until |R(-h)| = 1, R(z) = 1 + z b^T (I - zA)^{-1} 1, and stays there with y bounded
    tab = SCHEMES[name]
    h_stab = _bisect(lambda h: abs(1 + _linear_response(tab, -h, tab.b)) - 1, 1.0, 5.0)
    atol = 1e-12
    stepper = make_stepper(name, _decay, rtol=1e-8, atol=atol)
    t, y = 0.0, np.array([1.0])
    late_dt, late_y = [], []
    while t < 200.0:
        t, y, info = stepper.step(t, y, 200.0 - t)
        if t > 100.0 and not info["clipped"]:
            late_dt.append(info["dt"])
            late_y.append(abs(y[0]))
    assert h_stab > 2.0
    assert abs(np.mean(late_dt) / h_stab - 1) < 0.01
    assert max(late_y) < 100 * atol


# ---------------------------------------------------------------------------------------------
# Failures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EMBEDDED)
def test_blow_up_raises_step_size_underflow_near_the_pole(name):
    stepper = make_stepper(name, lambda t, y: y * y, rtol=1e-8)
    t, y = 0.0, np.array([1.0])
    with pytest.raises(StepSizeUnderflow, match=r"at t = 1\.0000000|at t = 0\.9999999") as info:
        while t < 2.0:
            t, y, _ = stepper.step(t, y, 2.0 - t)
    # exact solution 1/(1 - t) blows up at t = 1; the numerical pole is off by the global error
    assert abs(info.value.t - 1.0) < 1e-6
    assert isinstance(info.value, IntegratorError) and info.value.reason == "step size underflow"


def test_nan_rhs_raises_non_finite_state_with_time():
    stepper = make_stepper("dopri5", lambda t, y: np.full_like(y, np.nan))
    with pytest.raises(NonFiniteState, match=r"\(at t = 0\.25\)") as info:
        stepper.step(np.float64(0.25), np.ones(3), 1.0)
    assert info.value.t == 0.25 and info.value.reason == "non-finite state"


@pytest.mark.parametrize("name", EMBEDDED)
def test_nan_after_a_time_is_reported_at_that_time(name):
    def rhs(t, y):
        return np.full_like(y, np.nan) if t > 0.5 else -y

    stepper = make_stepper(name, rhs, rtol=1e-8)
    t, y = 0.0, np.array([1.0])
    with pytest.raises(NonFiniteState) as info:
        while t < 1.0:
            t, y, _ = stepper.step(t, y, 1.0 - t)
    assert 0.5 - 1e-10 < info.value.t <= 0.5
    np.testing.assert_allclose(y, np.exp(-t), rtol=1e-6)  # last good state kept by the caller


def test_fixed_step_overflow_raises_non_finite_state():
    stepper = make_stepper("rk4", lambda t, y: y * y, dt_fixed=0.1)
    t, y = 0.0, np.array([1.0])
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(NonFiniteState,
                                                                      match="at t = "):
        while t < 3.0:
            t, y, _ = stepper.step(t, y, 3.0 - t)


def test_bad_arguments_name_themselves():
    with pytest.raises(ValueError, match=r"integrator 'rk4' has no embedded error estimate.*"
                                         r"dt_fixed=.*bs32, dopri5"):
        make_stepper("rk4", _decay)
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0, got -1"):
        make_stepper("dopri5", _decay, rtol=-1.0)
    with pytest.raises(ValueError, match="rtol and atol are both 0"):
        make_stepper("dopri5", _decay, rtol=0.0, atol=0.0)
    with pytest.raises(ValueError, match="not both"):
        make_stepper("dopri5", _decay, dt_fixed=0.1, dt_initial=0.1)
    with pytest.raises(ValueError, match="dt_fixed must be a positive finite number, got 0"):
        make_stepper("rk4", _decay, dt_fixed=0.0)
    stepper = make_stepper("dopri5", _decay)
    with pytest.raises(ValueError, match="dt_limit must be > 0, got 0"):
        stepper.step(0.0, np.ones(2), 0.0)
    with pytest.raises(NonFiniteState, match="state passed"):
        stepper.step(0.0, np.array([np.inf]), 1.0)


# ---------------------------------------------------------------------------------------------
# Error norm and the linear/nonlinear split
# ---------------------------------------------------------------------------------------------


def test_error_norm_is_relative_and_safe_at_zero():
    zero = np.zeros(4)
    assert error_norm(zero, zero, zero, 1e-8, 0.0) == 0.0
    assert error_norm(np.ones(4), zero, zero, 1e-8, 0.0) == np.inf
    # scale invariance with atol = 0, even where squares underflow (1e-200^2 = 0 in float64)
    y = np.array([3.0, -4.0, 0.0, 0.0])
    e = np.array([1.0, 1.0, 1.0, 1.0]) * 1e-9
    ref = error_norm(e, y, 0.5 * y, 1e-8, 0.0)
    assert ref == pytest.approx(1e-9 / (1e-8 * 2.5))  # rms(e) = 1e-9, rms(y) = 2.5
    assert error_norm(1e-200 * e, 1e-200 * y, 0.5e-200 * y, 1e-8, 0.0) == pytest.approx(ref)
    assert error_norm(1e200 * e, 1e200 * y, 0.5e200 * y, 1e-8, 0.0) == pytest.approx(ref)
    z = np.array([3.0 + 4.0j, 0.0])
    assert rms_norm(z) == pytest.approx(5.0 / np.sqrt(2.0))


def test_linear_part_is_added_to_the_rhs():
    rates = -np.array([1.0, 4.0, 9.0])

    def nonlinear(t, y):
        return 0.1 * np.sin(t) * y**2

    def full(t, y):
        return rates * y + nonlinear(t, y)

    y0 = np.array([1.0, 0.5 + 0.5j, -0.2j])
    split = Stepper(SCHEMES["dopri5"], nonlinear, linear=rates, rtol=1e-9)
    whole = make_stepper("dopri5", full, rtol=1e-9)
    t1, y1 = t2, y2 = 0.0, y0
    for _ in range(30):
        t1, y1, _ = split.step(t1, y1, 5.0)
        t2, y2, _ = whole.step(t2, y2, 5.0)
    assert t1 == t2
    np.testing.assert_allclose(y1, y2, rtol=1e-13, atol=1e-300)


def test_rms_norm_and_modewise_norm_against_direct_sums():
    """The one-call fast paths agree with the definitions summed in Python's math module."""
    from kmdflow.integrators.error_control import MODEWISE_FLOOR, modewise_error_norm

    rng = np.random.default_rng(7)
    for scale in (1.0, 1e-170, 1e170):
        v = scale * (rng.standard_normal(300) + 1j * rng.standard_normal(300))
        direct = scale * np.sqrt(sum(abs(x / scale) ** 2 for x in v) / v.size)
        assert rms_norm(v) == pytest.approx(direct, rel=1e-13)
        assert rms_norm(v.real) == pytest.approx(
            scale * np.sqrt(sum((x / scale) ** 2 for x in v.real) / v.size), rel=1e-13)
    assert rms_norm(np.array([1, 2, 2])) == pytest.approx(np.sqrt(3.0))  # integers
    assert rms_norm(np.array([np.inf, 1.0])) == np.inf
    assert np.isnan(rms_norm(np.array([np.nan, 1.0])))
    # mode-wise: each component against max(|y_k|, |y_new,k|, floor * peak)
    y = rng.standard_normal(50) * np.logspace(0, -6, 50) + 0j
    y_new = 0.9 * y
    e = 1e-10 * rng.standard_normal(50)
    for rtol, atol in ((1e-8, 0.0), (1e-6, 1e-12)):
        size = np.maximum(np.abs(y), np.abs(y_new))
        scale = atol + rtol * np.maximum(size, MODEWISE_FLOOR * size.max())
        direct = np.sqrt(np.mean([(abs(a) / b) ** 2 for a, b in zip(e, scale)]))
        assert modewise_error_norm(e, y, y_new, rtol, atol) == pytest.approx(direct, rel=1e-13)
