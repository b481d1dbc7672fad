"""Network visualization (part 3 of the assignment): saliency maps, fooling images, class visualization."""
