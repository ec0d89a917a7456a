"""Domains: the torus (conventions in :mod:`kmdflow.domains.torus`)."""
