"""Loopgate's ML core: model specs, loading, prediction, training and saliency.

Pure PyTorch and Pillow. Nothing here imports Django or another Loopgate app,
and no tensor or torch module crosses this package's public API: callers pass
PIL images, paths and plain Python, and get frozen dataclasses back.
"""
