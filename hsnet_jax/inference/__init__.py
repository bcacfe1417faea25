"""A trained network at work: the evaluation forward path, reports and metrics, their
figures, and predictions on photos and videos."""
