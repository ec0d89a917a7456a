"""kmdflow.flows"""
