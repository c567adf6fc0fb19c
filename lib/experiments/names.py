"""Names of the systems and scores that tables, results JSON and report variables refer to.

One definition for the experiments that produce them and for lib.render.variables that
reads them back; this module imports nothing, so rendering stays free of torch.
"""

SUPERVISED = "supervised CNN"
VAE_PROBE = "VAE + linear head"
CONTRASTIVE_PROBE = "contrastive + linear head"
STACKING = "stacking ensemble"
BASELINE = "plain CNN, 2,000 labels (baseline)"  # DESIGN §5: trained on every label, validation split included
ORACLE = "oracle (answer-key labels)"

BASELINE_SCORE = "Mahalanobis, plain CNN features (baseline)"  # DESIGN §5
VAE_SCORE = "negative ELBO, VAE"
CONV_AE_SCORE = "reconstruction error, convolutional AE"

MODEL_SUPERVISED = "ours, labels only"  # the project's model (lib.nn.multihead) trained on the 2,000 labels
MODEL_SELF_TRAINED = "ours, self-trained"  # ... on the labels and the unlabeled images' pseudo-labels
