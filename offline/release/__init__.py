"""Release steps: package a training run as the Kaggle dataset, export forests, push and submit."""
