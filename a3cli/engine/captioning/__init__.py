"""Image captioning (parts 1 and 2 of the assignment) with the engine's RNN and LSTM cores.

model: the assignment's CaptioningRNN; decoding: greedy, beam, temperature; vocab, data,
features: the data every source produces; coco, shapes: the sources; sources: choosing one;
training, evaluation: the training run and its BLEU; sampling: captioning with a trained model.
"""
