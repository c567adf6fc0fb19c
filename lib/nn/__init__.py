"""Networks: augmentation, models, the training loop."""
