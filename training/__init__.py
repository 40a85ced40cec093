"""Data, evaluation, fine-tuning, ONNX export and bundle writing. Torch lives only here."""
