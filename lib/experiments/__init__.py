"""What single notebooks study: data exploration, classification baselines, transfer, the audit."""
