"""kmdflow.kernels"""
