"""GANs (part 5 of the assignment): the networks, their noise, training; what they share with other generative
models (the data, the Fréchet distance, averaged weights, the run's pictures) is in generative/."""
