"""kmdflow.integrators"""
