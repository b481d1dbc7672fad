"""The shared PyTorch engine: numerical work only, no CLI code, no printing.

Names are loaded on first use (PEP 562) so that importing a light module such as
`a3cli.engine.errors` or `a3cli.engine.catalogue` does not import torch: `a3 --help`
must stay instant. docs/ARCHITECTURE.md says where things live.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    # shared support
    "A3Error": "errors",
    "resolve_device": "device",
    "seed_everything": "device",
    "seeded_generator": "device",
    "rng_state": "device",
    "set_rng_state": "device",
    "load_image": "images",
    "save_image": "images",
    "save_checkpoint": "checkpoints",
    "load_checkpoint": "checkpoints",
    # the assignment's layers
    "rnn_step_forward": "layers.rnn",
    "rnn_forward": "layers.rnn",
    "lstm_step_forward": "layers.rnn",
    "lstm_forward": "layers.rnn",
    "word_embedding_forward": "layers.embedding",
    "temporal_affine_forward": "layers.embedding",
    "temporal_softmax_loss": "layers.losses",
    "content_loss": "layers.losses",
    "gram_matrix": "layers.losses",
    "style_loss": "layers.losses",
    "tv_loss": "layers.losses",
    "discriminator_loss": "layers.losses",
    "generator_loss": "layers.losses",
    "ls_discriminator_loss": "layers.losses",
    "ls_generator_loss": "layers.losses",
    "gradient_penalty": "layers.losses",
    "wgan_critic_loss": "layers.losses",
    "wgan_generator_loss": "layers.losses",
    "MultiHeadAttention": "layers.transformer",
    "PositionalEncoding": "layers.transformer",
    "TransformerDecoderLayer": "layers.transformer",
    # backbones
    "Backbone": "backbones.registry",
    "load_backbone": "backbones.registry",
    "backbone_names": "backbones.registry",
    "imagenet_classes": "backbones.registry",
    "resolve_class": "backbones.imagenet_names",
    # captioning
    "CaptioningRNN": "captioning.model",
    "load_shapes": "captioning.shapes",
    "load_coco_h5": "captioning.coco",
    "load_coco_json": "captioning.coco",
    "train_captioner": "captioning.training",
    "load_captioner": "captioning.sampling",
    # visualization
    "saliency_maps": "visualize.saliency",  # (the function `saliency` shares its module's name: not exported)
    "SaliencyConfig": "visualize.saliency_config",
    "vanilla_saliency": "visualize.saliency",
    "smoothgrad": "visualize.saliency",
    "integrated_gradients": "visualize.saliency",
    "randomize_weights": "visualize.saliency",
    "gradcam": "visualize.gradcam",
    "guided_backprop": "visualize.gradcam",
    "deletion_insertion": "visualize.faithfulness",
    "parse_objective": "visualize.objectives",
    "fool": "visualize.fooling",
    "FoolConfig": "visualize.fooling_config",
    "class_visualization": "visualize.classvis",
    "ClassVisConfig": "visualize.classvis_config",
    # style transfer
    "StyleConfig": "style.config",
    "StyleResult": "style.transfer",
    "StyleTransfer": "style.transfer",
    "stylize": "style.transfer",
    # GANs
    "sample_noise": "gan.networks",
    "discriminator": "gan.networks",
    "generator": "gan.networks",
    "dc_discriminator": "gan.networks",
    "dc_generator": "gan.networks",
    "wgan_critic": "gan.networks",
    "GanConfig": "gan.config",
    "prepare_gan": "gan.training",
    "load_generator": "gan.outputs",
    # what generative models share
    "load_dataset": "generative.data",
    "MnistClassifier": "generative.classifier",
    "load_classifier": "generative.classifier",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'a3cli.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(f"a3cli.engine.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return __all__
