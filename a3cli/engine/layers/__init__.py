"""The assignment's layers: RNN and LSTM cores, word embedding, temporal affine, and every loss.

Each core is a `torch.autograd.Function` whose backward is the assignment's hand-derived one.
"""
