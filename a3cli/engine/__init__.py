"""The shared PyTorch engine: numerical work only, no CLI code."""
