"""Packed training: several same-shape jobs trained as one batched model (lmexp/pack/step.py)."""
