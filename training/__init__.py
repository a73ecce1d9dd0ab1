"""Build datasets, train, evaluate and register models (the only package importing mlflow)."""
