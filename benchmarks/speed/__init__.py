"""Training speed of lmexp against the standard recipe written plainly.

python -m benchmarks.speed --help
"""
