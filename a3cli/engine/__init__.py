"""The shared PyTorch engine: numerical work only, no CLI code.

Names are loaded on first use (PEP 562) so that importing a light module such as
`a3cli.engine.errors` does not import torch: `a3 --help` must stay instant.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "A3Error": "errors",
    "resolve_device": "device",
    "seed_everything": "device",
    "rnn_step_forward": "rnn",
    "rnn_forward": "rnn",
    "lstm_step_forward": "rnn",
    "lstm_forward": "rnn",
    "word_embedding_forward": "layers",
    "temporal_affine_forward": "layers",
    "temporal_softmax_loss": "losses",
    "content_loss": "losses",
    "gram_matrix": "losses",
    "style_loss": "losses",
    "tv_loss": "losses",
    "discriminator_loss": "losses",
    "generator_loss": "losses",
    "ls_discriminator_loss": "losses",
    "ls_generator_loss": "losses",
    "gradient_penalty": "losses",
    "wgan_critic_loss": "losses",
    "wgan_generator_loss": "losses",
    "Backbone": "backbones",
    "load_backbone": "backbones",
    "backbone_names": "backbones",
    "imagenet_classes": "backbones",
    "load_image": "images",
    "save_image": "images",
    "save_checkpoint": "checkpoints",
    "load_checkpoint": "checkpoints",
    "rng_state": "device",
    "set_rng_state": "device",
    # captioning (issue 3): add names here
    "CaptioningRNN": "captioning",
    "load_shapes": "caption_data",
    "load_coco_h5": "caption_data",
    "load_coco_json": "caption_data",
    "train_captioner": "caption_train",
    "load_captioner": "caption_train",
    # visualization (issue 4): add names here
    "saliency_maps": "saliency",  # (the function `saliency` shares its module's name: not exported)
    "SaliencyConfig": "saliency",
    "vanilla_saliency": "saliency",
    "smoothgrad": "saliency",
    "integrated_gradients": "saliency",
    "randomize_weights": "saliency",
    "fool": "fooling",
    "FoolConfig": "fooling",
    "class_visualization": "classvis",
    "ClassVisConfig": "classvis",
    "resolve_class": "imagenet_names",
    # style transfer (issue 5): add names here
    "StyleConfig": "style",
    "StyleResult": "style",
    "StyleTransfer": "style",
    "stylize": "style",
    # GANs (issue 6): add names here
    "sample_noise": "gan",
    "discriminator": "gan",
    "generator": "gan",
    "dc_discriminator": "gan",
    "dc_generator": "gan",
    "wgan_critic": "gan",
    "load_dataset": "gan_data",
    "GanConfig": "gan_train",
    "prepare_gan": "gan_train",
    "train_gan": "gan_train",
    "load_generator": "gan_train",
    "MnistClassifier": "frechet",
    "load_classifier": "frechet",
    "frechet_distance": "frechet",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'a3cli.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"a3cli.engine.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
