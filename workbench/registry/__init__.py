"""The MLflow integration: registered model versions for the pages, decisions and retraining sets as runs."""
