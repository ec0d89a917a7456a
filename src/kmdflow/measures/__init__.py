"""kmdflow.measures"""
