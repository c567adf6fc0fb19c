"""Shared package of the 'Learning a distribution' study: data, models, evaluation, report."""
