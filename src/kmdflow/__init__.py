"""kmdflow: Wasserstein gradient flows of kernel mean discrepancies.

Public API (DESIGN.md section 2): :func:`run` and :func:`load_config`. The heavy modules are
imported on first use so that ``import kmdflow`` and ``kmdflow check`` stay fast.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_config", "run"]


def load_config(source):
    """Load and validate a config: a TOML path, a dict with the TOML structure, or a Config."""
    from kmdflow.experiments.config import load_config as _load

    return _load(source)


def run(config, out=None):
    """Run one flow; see :func:`kmdflow.experiments.run.run_config`. Returns an ``xarray.Dataset``."""
    from kmdflow.experiments.run import run_config

    return run_config(config, out)
