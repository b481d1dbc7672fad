"""The assignment's layers: RNN and LSTM cores, word embedding, temporal affine, every loss, the attention LSTM,
and the Transformer's attention, positions and decoder layers.

Each RNN and LSTM core is a `torch.autograd.Function` whose backward is the assignment's hand-derived one.
"""
