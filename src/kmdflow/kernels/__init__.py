"""Kernels by their spectrum (conventions: :mod:`kmdflow.domains.torus`).

:class:`SobolevKernel` is the ``H^-s`` kernel on ``T^1``: multiplier ``|k|^(-2s)``, closed-form
profile and derivative (Bernoulli polynomials for integer ``s``, zeta series otherwise).
"""

from kmdflow.kernels.sobolev import (
    SobolevKernel,
    bernoulli_coefficients,
    bernoulli_coefficients_exact,
    bernoulli_numbers,
)

__all__ = [
    "SobolevKernel",
    "bernoulli_coefficients",
    "bernoulli_coefficients_exact",
    "bernoulli_numbers",
]
