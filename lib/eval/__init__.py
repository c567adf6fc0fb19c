"""Evaluation: metrics with bootstrap intervals and paired differences, embedding quality, the protocol, targets."""
