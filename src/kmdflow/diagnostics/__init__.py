"""kmdflow.diagnostics"""
