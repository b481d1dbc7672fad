"""Image captioning (parts 1 and 2 of the assignment) with the engine's RNN and LSTM cores.

model: the assignment's CaptioningRNN; decoding: greedy, beam, temperature; vocab, data,
features: the data every source produces; coco, karpathy, shapes: the sources; listed: what
the file sources share (images by split, --check); sources: choosing one; training,
evaluation: the training run and its BLEU and CIDEr-D; sampling: captioning with a trained model.
"""
