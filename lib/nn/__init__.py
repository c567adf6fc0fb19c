"""Networks: building blocks, the CNN family with optional heads, the comparison models, augmentation,
the one batched forward pass and the registry of network kinds (no training here: lib.train)."""
