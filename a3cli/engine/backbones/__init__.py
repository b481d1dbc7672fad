"""Pretrained ImageNet classifiers behind one interface (`Backbone`), their weights and class names.

registry: `Backbone`, `load_backbone`, `classify`; builders: one function per architecture;
weights: where each backbone's weights come from; efficientnet_lite: the offline default's
model code; imagenet_names: classes by index or any WordNet synonym.
"""
