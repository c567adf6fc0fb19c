"""What each notebook studies, as records keyed by the ids of lib.results: exploration, pretraining,
classification, anomaly (and the audit), transfer."""
