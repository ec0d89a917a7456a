"""kmdflow.summation"""
