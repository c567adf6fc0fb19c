"""Training: the one step loop, the checkpoint format, the losses, the train-or-load cache and the runs."""
