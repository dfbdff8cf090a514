"""Training tasks for the `Trainer`: pretraining and sentence(-pair) classification."""
