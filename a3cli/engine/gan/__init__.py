"""GANs (part 5 of the assignment): the networks, the images they learn from, training, the Fréchet distance."""
