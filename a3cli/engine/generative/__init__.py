"""What both families of generative models, GANs (gan/) and diffusion models (diffusion/), share: the images
they learn from (data.py), the Fréchet judge (judge.py) and the digit classifier whose features it uses on
MNIST (classifier.py), averaged weights (ema.py), the pictures a run leaves (pictures.py) and the
nearest-training-image check (inspection.py).

Written once, below both: gan/ and diffusion/ import from here, never from each other, and nothing here
imports either of them (tests/test_engine_layout.py checks).
"""
