"""Neural style transfer (part 4 of the assignment): the optimisation, its settings, colour handling."""
