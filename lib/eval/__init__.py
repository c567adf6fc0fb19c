"""Evaluation: metrics with bootstrap intervals, anomaly scores, embedding quality, targets."""
