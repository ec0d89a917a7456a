"""kmdflow.experiments"""
