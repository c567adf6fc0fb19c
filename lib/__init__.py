"""Shared package of the 'Learning a distribution' study: data, models, evaluation, report."""

import os

# OpenMP threads that spin while waiting for work make PyTorch several times slower when
# the cores are shared (two notebooks, a test run beside a training run); passive waiting
# costs little when they are not. Set before torch is imported; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
