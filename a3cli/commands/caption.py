"""`a3 caption-train` and `a3 caption-sample`: the assignment's RNN/LSTM captioner as a tool."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from a3cli.app import DeviceOption, SeedOption, app, console, progress_bar, setup
from a3cli.engine.files import WEIGHTS_DIR

# The checkpoint trained on shapes that ships with the project (`make weights` makes it).
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "caption_shapes.pt"


@dataclass
class DataOptions:
    """Which data source caption-train reads, and how its features are made."""

    data: Optional[Path] = None
    pca: bool = True
    images: Optional[Path] = None
    annotations: Optional[Path] = None
    dataset: Optional[str] = None
    model: Optional[str] = None
    layer: Optional[str] = None
    grid: Optional[int] = None
    image_size: Optional[int] = None
    min_count: int = 1
    max_length: int = 16
    max_train: Optional[int] = None


def load_data(opts: DataOptions, device, vocab=None, progress=None):
    """One of the three sources; with no option at all, shapes."""
    from a3cli.engine.backbones import load_backbone
    from a3cli.engine.caption_data import SHAPES_FEATURES, FeatureSpec, load_coco_h5, load_coco_json, load_shapes
    from a3cli.engine.errors import A3Error

    chosen = [name for name, value in (("--data", opts.data), ("--images/--annotations", opts.images or opts.annotations),
                                       ("--dataset", opts.dataset)) if value]
    if len(chosen) > 1:
        raise A3Error(f"choose one data source, not {' and '.join(chosen)}")
    if opts.data is not None:
        return load_coco_h5(opts.data, pca=opts.pca, max_train=opts.max_train)
    backbone = lambda name: load_backbone(name, device)  # noqa: E731
    if opts.images is not None or opts.annotations is not None:
        if opts.images is None or opts.annotations is None:
            raise A3Error("--images and --annotations go together")
        spec = FeatureSpec(backbone=opts.model or "efficientnet_lite0", layer=opts.layer or "pooled",
                           image_size=opts.image_size or 224, grid=opts.grid or 1)
        return load_coco_json(opts.images, opts.annotations, spec, backbone, opts.min_count, opts.max_length,
                              max_train=opts.max_train, vocab=vocab, progress=progress)
    if (opts.dataset or "shapes") != "shapes":
        raise A3Error(f"--dataset {opts.dataset!r}: the built-in data set is 'shapes'")
    d = SHAPES_FEATURES
    spec = FeatureSpec(backbone=opts.model or d.backbone, layer=opts.layer or d.layer,
                       image_size=opts.image_size or d.image_size, grid=opts.grid or d.grid)
    return load_shapes(backbone, spec, max_train=opts.max_train, progress=progress)


def extract_bar(description: str):
    """A progress bar for feature extraction, shown only if extraction actually happens."""
    state = {}

    def progress(step, metrics):
        if "bar" not in state:
            state["cm"] = progress_bar(None, description)
            state["bar"] = state["cm"].__enter__()
        state["bar"](step, metrics)

    def close():
        if "cm" in state:
            state["cm"].__exit__(None, None, None)

    return progress, close


@app.command("caption-train")
def caption_train(
    data: Annotated[Optional[Path], typer.Option("--data", help="The assignment's coco_captioning folder (HDF5 + JSON).")] = None,
    pca: Annotated[bool, typer.Option("--pca/--no-pca", help="With --data: the 512-d PCA features or the 4096-d fc7.")] = True,
    images: Annotated[Optional[Path], typer.Option("--images", help="Folder of images named in --annotations.")] = None,
    annotations: Annotated[Optional[Path], typer.Option("--annotations", help="COCO-format captions JSON.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Built-in data set: shapes (the default).")] = None,
    model: Annotated[Optional[str], typer.Option("--model", "-m", help="Backbone for image features (default efficientnet_lite0).")] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Backbone stage for features, or 'pooled' (default: pooled; shapes: block4).")] = None,
    grid: Annotated[Optional[int], typer.Option("--grid", min=1, max=8, help="Pool the stage's map to grid×grid (keeps layout).")] = None,
    image_size: Annotated[Optional[int], typer.Option("--image-size", min=32, max=1024, help="Image side fed to the backbone.")] = None,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="Words seen fewer times become <UNK> (JSON source).")] = 1,
    max_length: Annotated[int, typer.Option("--max-length", min=1, help="Longest training caption in words (JSON source).")] = 16,
    cell_type: Annotated[str, typer.Option("--cell-type", help="rnn or lstm.")] = "lstm",
    hidden_dim: Annotated[int, typer.Option("--hidden-dim", min=1)] = 256,
    wordvec_dim: Annotated[int, typer.Option("--wordvec-dim", min=1)] = 128,
    lr: Annotated[float, typer.Option("--lr", min=0.0, help="Adam's learning rate.")] = 5e-3,
    lr_decay: Annotated[float, typer.Option("--lr-decay", min=0.0, max=1.0, help="Learning-rate factor per epoch.")] = 0.95,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 50,
    epochs: Annotated[int, typer.Option("--epochs", min=1)] = 20,
    max_train: Annotated[Optional[int], typer.Option("--max-train", min=1, help="Train on this many captions only.")] = None,
    grad_clip: Annotated[float, typer.Option("--grad-clip", min=0.0, help="Clip the gradient norm (0: off).")] = 0.0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for captioner.pt, metrics.json and loss.png.")] = Path("out/caption"),
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")] = False,
    export: Annotated[Optional[Path], typer.Option("--export", help="Also write a small sampling-only checkpoint here.")] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Train the assignment's captioner (RNN or LSTM) on shapes, COCO features, or your own captions.

    Examples:

      a3 caption-train                                  # shapes, LSTM, a few CPU minutes

      a3 caption-train --data coco_captioning --cell-type rnn --max-train 50 --epochs 50 --batch-size 25

      a3 caption-train --images photos/ --annotations captions.json --out out/mine
    """
    from a3cli.engine.caption_train import TrainConfig, iterations_per_epoch, train_captioner
    from a3cli.engine.checkpoints import load_checkpoint
    from a3cli.engine.errors import A3Error

    if cell_type not in ("rnn", "lstm"):
        raise A3Error(f"--cell-type {cell_type!r}: choose rnn or lstm")
    picked = setup(device, seed)
    vocab = ckpt = None
    if resume:
        ckpt = load_checkpoint(out / "captioner.pt", kind="captioner")
        if images or annotations:  # the vocabulary of a JSON source comes from the run being resumed
            vocab = (ckpt["word_to_idx"], ckpt["idx_to_word"])
    opts = DataOptions(data, pca, images, annotations, dataset, model, layer, grid, image_size, min_count,
                       max_length, max_train)
    progress, close = extract_bar("features")
    try:
        captions = load_data(opts, picked, vocab, progress)
    finally:
        close()
    if ckpt is not None and (ckpt.get("idx_to_word") != captions.idx_to_word
                             or ckpt["model_config"]["input_dim"] != captions.input_dim):
        raise A3Error(f"--resume: '{out / 'captioner.pt'}' was trained on other data (different vocabulary or feature size)")
    config = TrainConfig(cell_type, hidden_dim, wordvec_dim, lr, lr_decay, batch_size, epochs, grad_clip)
    train = captions.splits["train"]
    console.print(f"{captions.source}: {len(train)} training captions, {len(captions.word_to_idx)} words, "
                  f"features {captions.input_dim}-d, device {picked}", highlight=False, soft_wrap=True)
    total = epochs * iterations_per_epoch(len(train), batch_size)
    with progress_bar(total, f"{cell_type} epochs={epochs}") as bar:
        metrics = train_captioner(captions, config, out, picked, resume=resume, progress=bar, export=export)
    table = Table(title="BLEU (greedy captions)", title_justify="left")
    table.add_column("split")
    for n in range(1, 5):
        table.add_column(f"BLEU-{n}", justify="right")
    for split, scores in metrics["bleu"].items():
        table.add_row(split, *(f"{scores[f'bleu{n}']:.3f}" for n in range(1, 5)))
    console.print(table)
    final = metrics["train_loss"][-1] if metrics["train_loss"] else float("nan")
    console.print(f"final training loss {final:.4f}; wrote {out / 'captioner.pt'}, {out / 'metrics.json'}, "
                  f"{out / 'loss.png'}" + (f", {export}" if export else ""), highlight=False, soft_wrap=True)


@app.command("caption-sample")
def caption_sample(
    images: Annotated[Optional[list[Path]], typer.Argument(help="Images to caption.", show_default=False)] = None,
    checkpoint: Annotated[Path, typer.Option("--checkpoint", "-c", help="A captioner checkpoint (default: the shipped shapes one).")] = DEFAULT_CHECKPOINT,
    beam_size: Annotated[int, typer.Option("--beam-size", "-k", min=1, help="Beam search with this many beams (1: greedy).")] = 1,
    temperature: Annotated[Optional[float], typer.Option("--temperature", "-t", min=1e-6, help="Draw words at this temperature instead.")] = None,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, help="With --temperature: draw among the k likeliest words.")] = None,
    max_length: Annotated[int, typer.Option("--max-length", min=1, max=200)] = 30,
    data: Annotated[Optional[Path], typer.Option("--data", help="Caption the assignment's features in this coco_captioning folder.")] = None,
    dataset: Annotated[Optional[str], typer.Option("--dataset", help="Caption images of a built-in data set: shapes.")] = None,
    split: Annotated[str, typer.Option("--split", help="With --data or --dataset: which split.")] = "val",
    num: Annotated[int, typer.Option("--num", "-n", min=1, help="With --data or --dataset: how many examples.")] = 6,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write a PNG of the images with their captions.")] = None,
    save_images: Annotated[Optional[Path], typer.Option("--save-images", help="With --dataset: write the images here as PNG.")] = None,
    device: DeviceOption = "auto",
    seed: SeedOption = 0,
) -> None:
    """Caption images with a trained captioner; or compare with the truth on a data set's split.

    Examples:

      a3 caption-sample shapes.png

      a3 caption-sample photo.jpg --checkpoint out/mine/captioner.pt --beam-size 5

      a3 caption-sample --dataset shapes --split test --num 6 --out captions.png

      a3 caption-sample --data coco_captioning --split val --num 5 --checkpoint out/coco/captioner.pt
    """
    import torch

    from a3cli.engine.caption_data import FeatureSpec, apply_norm, features_of
    from a3cli.engine.caption_train import load_captioner
    from a3cli.engine.captioning import Decoding, captions_figure, describe
    from a3cli.engine.errors import A3Error
    from a3cli.engine.images import load_image

    sources = [name for name, on in (("IMAGE", images), ("--data", data), ("--dataset", dataset)) if on]
    if len(sources) != 1:
        raise A3Error("give image files, or --data DIR, or --dataset shapes (exactly one)" if not sources
                      else f"choose one of {' and '.join(sources)}")
    decoding = Decoding(beam_size, temperature, top_k, max_length=max_length)
    decoding.check()
    picked = setup(device, seed)
    if checkpoint == DEFAULT_CHECKPOINT and not checkpoint.is_file():
        raise A3Error(f"the shipped checkpoint '{checkpoint}' is missing: run 'make weights' or pass --checkpoint")
    if images:
        pictures = [load_image(path) for path in images]  # a bad file fails before any model is loaded
    model, ckpt = load_captioner(checkpoint, picked)
    generator = torch.Generator(device=picked).manual_seed(seed)

    if data is not None:
        from a3cli.engine.caption_data import decode, load_coco_h5

        spec = ckpt["feature_spec"]
        coco = load_coco_h5(data, pca=bool(spec.get("pca", True)) if isinstance(spec, dict) else True)
        if split not in coco.splits:
            raise A3Error(f"--split {split!r}: choose train or val")
        if coco.idx_to_word != ckpt["idx_to_word"] or coco.input_dim != model.W_proj.shape[0]:
            raise A3Error(f"'{checkpoint}' was not trained on these features (vocabulary or feature size differ)")
        s = coco.splits[split]
        rows = torch.randperm(len(s))[:num]
        generated = describe(model, s.features[s.image_idxs[rows]].to(picked), decoding, generator)
        for row, caption in zip(rows.tolist(), generated):
            idx = int(s.image_idxs[row])
            console.print(f"[bold]{s.images[idx] if idx < len(s.images) else idx}[/]", highlight=False, soft_wrap=True)
            console.print(f"  generated: {caption}", highlight=False, soft_wrap=True)
            console.print(f"  truth:     {' '.join(decode(s.captions[row].tolist(), coco.idx_to_word))}", highlight=False, soft_wrap=True)
        return

    spec = FeatureSpec.from_dict(ckpt["feature_spec"]) if ckpt.get("source") != "coco_h5" else None
    if spec is None:
        raise A3Error(f"'{checkpoint}' was trained on the assignment's precomputed features; "
                      "caption those with --data DIR instead of image files")
    truths = None
    names: list[str]
    if dataset is not None:
        from a3cli.engine.caption_data import SHAPES_SPLITS, draw_scene, shapes_split

        if dataset != "shapes":
            raise A3Error(f"--dataset {dataset!r}: the built-in data set is 'shapes'")
        if split not in SHAPES_SPLITS:
            raise A3Error(f"--split {split!r}: shapes has {', '.join(SHAPES_SPLITS)}")
        scenes = shapes_split(split, min(num, SHAPES_SPLITS[split]))
        pictures = [draw_scene(scene) for scene in scenes]
        truths = [scene.caption() for scene in scenes]
        names = [f"shapes {split} {i}" for i in range(len(scenes))]
        if save_images is not None:
            from a3cli.engine.images import save_image

            names = [str(save_image(p, save_images / f"shapes_{split}_{i:03d}.png")) for i, p in enumerate(pictures)]
    else:
        names = [str(p) for p in images]
    from a3cli.engine.backbones import load_backbone

    backbone = load_backbone(spec.backbone, picked)
    generated = []
    for start in range(0, len(pictures), 32):
        feats = apply_norm(features_of(backbone, pictures[start: start + 32], spec), ckpt.get("feature_norm"))
        generated += describe(model, feats, decoding, generator)
    for k, (name, caption) in enumerate(zip(names, generated)):
        if truths is None:
            console.print(f"{name}: {caption}", highlight=False, soft_wrap=True)
        else:
            mark = "[green]ok[/]" if caption == truths[k] else "[red]differs[/]"
            console.print(f"{name}: {caption}   (true: {truths[k]}) {mark}", highlight=False, soft_wrap=True)
    if out is not None:
        captions_figure(pictures, generated, out, truths)
        console.print(f"wrote {out}", highlight=False, soft_wrap=True)
