"""Whole lmexp.train processes against pytorch/examples' word_language_model, same model and data.

python -m benchmarks.peer --help
"""
