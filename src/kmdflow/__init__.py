"""kmdflow: Wasserstein gradient flows of kernel mean discrepancies."""

__version__ = "0.1.0"
