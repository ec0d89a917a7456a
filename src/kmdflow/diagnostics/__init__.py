"""Diagnostics: pure functions of states and saved curves (norms, transport distances, rates)."""

from kmdflow.diagnostics.norms import grid_sobolev_norm, particle_sobolev_norm
from kmdflow.diagnostics.rates import RateFit, RatePrediction, fit_rate, fit_window, predict_rate
from kmdflow.diagnostics.regularity import RegularityEstimate, estimate_regularity
from kmdflow.diagnostics.wasserstein import CircleTransport, circle_transport, wasserstein2

__all__ = [
    "CircleTransport",
    "RateFit",
    "RatePrediction",
    "RegularityEstimate",
    "circle_transport",
    "estimate_regularity",
    "fit_rate",
    "fit_window",
    "grid_sobolev_norm",
    "particle_sobolev_norm",
    "predict_rate",
    "wasserstein2",
]
