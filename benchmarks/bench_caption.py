"""Captioning measurements: training speed against NumPy, the assignment's overfit check, shapes scores.

  python benchmarks/bench_caption.py speed     # iterations/s of caption-train's step vs a NumPy
                                               # CaptioningRNN + Adam (the assignment's), same sizes
  python benchmarks/bench_caption.py attention # iterations/s of the attention captioner's step: the fused
                                               # sequence (hand-derived backward) vs the step loop (autograd)
  python benchmarks/bench_caption.py overfit   # 50 training captions, the assignment's settings
  python benchmarks/bench_caption.py shapes [RUN...]  # shapes, timed: the assignment's LSTM on the old and
                                               # the new features, and the attention LSTM (the shipped
                                               # captioner's settings): exact match and BLEU on test
  python benchmarks/bench_caption.py distance  # feature distance (caption-sample's note) of the held-out
                                               # shapes pictures and the bundled photos, shipped captioner

speed: one training iteration = loss, backward, Adam step, at the assignment's COCO sizes
(batch 50, T = 17, D = 512, W = 256, H = 512, V = 1004), float32, CPU. Timings are medians of
blocks of steps interleaved in one process; the ratio is ours / NumPy in iterations per second.
The NumPy layers are those of benchmarks/bench_lstm.py (the assignment's loops).
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from bench_lstm import np_lstm_backward, np_lstm_forward, np_rnn_backward, np_rnn_forward

N, T, D, W, H, V = 50, 17, 512, 256, 512, 1004


# ---- the assignment's CaptioningRNN in NumPy ---------------------------------------------------


def np_init(cell: str, rng: np.random.Generator) -> dict[str, np.ndarray]:
    k = 4 if cell == "lstm" else 1
    p = {
        "W_embed": rng.standard_normal((V, W)) / 100,
        "W_proj": rng.standard_normal((D, H)) / math.sqrt(D),
        "b_proj": np.zeros(H),
        "Wx": rng.standard_normal((W, k * H)) / math.sqrt(W),
        "Wh": rng.standard_normal((H, k * H)) / math.sqrt(H),
        "b": np.zeros(k * H),
        "W_vocab": rng.standard_normal((H, V)) / math.sqrt(H),
        "b_vocab": np.zeros(V),
    }
    return {name: value.astype(np.float32) for name, value in p.items()}


def np_loss(params, features, captions, cell):
    """The assignment's CaptioningRNN.loss: forward and backward, returning (loss, grads)."""
    p = params
    cin, cout = captions[:, :-1], captions[:, 1:]
    mask = cout != 0
    h0 = features @ p["W_proj"] + p["b_proj"]
    x = p["W_embed"][cin]
    h, caches = (np_rnn_forward if cell == "rnn" else np_lstm_forward)(x, h0, p["Wx"], p["Wh"], p["b"])
    n, t, hd = h.shape
    scores = h.reshape(n * t, hd) @ p["W_vocab"] + p["b_vocab"]
    # temporal softmax loss
    flat_y, flat_mask = cout.reshape(n * t), mask.reshape(n * t)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    loss = -np.sum(flat_mask * np.log(probs[np.arange(n * t), flat_y])) / n
    dscores = probs.copy()
    dscores[np.arange(n * t), flat_y] -= 1
    dscores *= flat_mask[:, None] / n
    grads = {"W_vocab": h.reshape(n * t, hd).T @ dscores, "b_vocab": dscores.sum(0)}
    dh = (dscores @ p["W_vocab"].T).reshape(n, t, hd)
    dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = (np_rnn_backward if cell == "rnn" else np_lstm_backward)(dh, caches)
    dW_embed = np.zeros_like(p["W_embed"])
    np.add.at(dW_embed, cin, dx)
    grads["W_embed"] = dW_embed
    grads["W_proj"], grads["b_proj"] = features.T @ dh0, dh0.sum(0)
    return loss, grads


def np_adam(params, grads, state, lr=5e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """The assignment's optim.adam, per parameter."""
    state["t"] = state.get("t", 0) + 1
    t = state["t"]
    for name, w in params.items():
        m = state.setdefault(("m", name), np.zeros_like(w))
        v = state.setdefault(("v", name), np.zeros_like(w))
        m *= beta1
        m += (1 - beta1) * grads[name]
        v *= beta2
        v += (1 - beta2) * grads[name] ** 2
        mt, vt = m / (1 - beta1**t), v / (1 - beta2**t)
        w -= (lr * mt / (np.sqrt(vt) + eps)).astype(w.dtype)


def interleaved_medians(steps: dict, repeats: int = 8, block: int = 3) -> dict[str, float]:
    """Median seconds per call of each function, timed in blocks interleaved in one process, so drifting machine
    load hits all alike. The first call of each block is not timed: OpenBLAS's and torch's idle threads keep
    spinning for a while after their library returns, and on 2 cores that steals the other's first step."""
    for fn in steps.values():
        for _ in range(3):
            fn()
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            fn()
            for _ in range(block):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in times.items()}


def speed() -> dict:
    from a3cli.engine.captioning.model import CaptioningRNN

    rng = np.random.default_rng(0)
    word_to_idx = {"<NULL>": 0, "<START>": 1, "<END>": 2, **{f"w{i}": i for i in range(3, V)}}
    features = rng.standard_normal((N, D)).astype(np.float32)
    captions = rng.integers(1, V, size=(N, T))
    captions[:, -3:] = 0
    results = {}
    for cell in ("rnn", "lstm"):
        params, state = np_init(cell, rng), {}
        torch.manual_seed(0)
        model = CaptioningRNN(word_to_idx, D, W, H, cell)
        optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
        tf, tc = torch.from_numpy(features), torch.from_numpy(captions)

        def ours():
            loss = model.loss(tf, tc)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        def numpy_step():
            _, grads = np_loss(params, features, captions, cell)
            np_adam(params, grads, state)

        med = interleaved_medians({"ours": ours, "numpy": numpy_step})
        results[cell] = {
            "ours_it_per_s": 1 / med["ours"],
            "numpy_it_per_s": 1 / med["numpy"],
            "ratio": med["numpy"] / med["ours"],
        }
        print(
            f"{cell:4s}  ours {1 / med['ours']:6.2f} it/s   numpy {1 / med['numpy']:6.2f} it/s   "
            f"ratio ours/numpy {med['numpy'] / med['ours']:.2f}x",
            flush=True,
        )
    return results


def attention() -> dict:
    """One training step of the shipped attention captioner's size (batch 50, 16 cells, H 256, W 128, shapes'
    captions): the fused sequence against the same steps under autograd (what it replaced)."""
    import a3cli.engine.captioning.model as model_module
    from a3cli.engine.captioning.model import CaptioningRNN
    from a3cli.engine.captioning.shapes import shapes_split, shapes_vocab
    from a3cli.engine.captioning.vocab import encode, tokenize
    from a3cli.engine.layers.attention import attention_lstm_forward, attention_lstm_steps

    word_to_idx, _ = shapes_vocab()
    captions = torch.tensor([encode(tokenize(s.caption()), word_to_idx, 16) for s in shapes_split("train", 50)])
    features = torch.randn(50, 16 * 40, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = CaptioningRNN(word_to_idx, 16 * 40, 128, 256, "attention", grid_cells=16, cell_positions=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)

    def step_with(core):
        def step():
            model_module.attention_lstm_forward = core
            loss = model.loss(features, captions)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        return step

    try:
        med = interleaved_medians(
            {"fused": step_with(attention_lstm_forward), "steps": step_with(attention_lstm_steps)}
        )
    finally:
        model_module.attention_lstm_forward = attention_lstm_forward
    result = {
        "fused_it_per_s": 1 / med["fused"],
        "steps_it_per_s": 1 / med["steps"],
        "ratio": med["steps"] / med["fused"],
    }
    print(
        f"attention step, batch 50: fused {result['fused_it_per_s']:.2f} it/s, autograd steps "
        f"{result['steps_it_per_s']:.2f} it/s, ratio {result['ratio']:.2f}x ({torch.get_num_threads()} threads)"
    )
    return result


# ---- quality ----------------------------------------------------------------------------------------


def overfit() -> dict:
    """The assignment's overfit check on 50 training captions: shapes, and random COCO-sized captions."""
    import tempfile

    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.captioning.data import CaptionData, Split
    from a3cli.engine.captioning.shapes import load_shapes
    from a3cli.engine.captioning.training import TrainConfig, train_captioner

    shapes = load_shapes(load_backbone, max_train=50)
    shapes.splits = {"train": shapes.splits["train"]}
    rng = np.random.default_rng(231)
    caps = np.zeros((50, 17), dtype=np.int64)  # COCO-like: 512-d features, 1004 words, up to 15 words
    for row in caps:
        length = rng.integers(8, 16)
        row[0], row[1 : length + 1], row[length + 1] = 1, rng.integers(4, V, size=length), 2
    i2w = ["<NULL>", "<START>", "<END>", "<UNK>"] + [f"w{i}" for i in range(4, V)]
    random_set = CaptionData(
        {w: i for i, w in enumerate(i2w)},
        i2w,
        {
            "train": Split(
                torch.from_numpy(caps),
                torch.arange(50),
                torch.from_numpy(rng.standard_normal((50, 512)).astype(np.float32)),
                [""] * 50,
            )
        },
        {},
        "random",
    )
    results = {}
    for name, data in (("shapes", shapes), ("random 512-d, V=1004", random_set)):
        for cell, decay in (("rnn", 0.95), ("lstm", 0.995)):
            np.random.seed(231)
            config = TrainConfig(
                cell_type=cell, hidden_dim=512, wordvec_dim=256, lr=5e-3, lr_decay=decay, batch_size=25, epochs=50
            )
            with tempfile.TemporaryDirectory() as out:
                metrics = train_captioner(data, config, out, torch.device("cpu"), seed=231)
            final = metrics["train_loss"][-1]
            target = 0.1 if cell == "rnn" else 0.5
            results[f"{name} {cell}"] = {"final_loss": final, "iterations": metrics["iterations"], "target": target}
            print(
                f"{name:22s} {cell:4s} {metrics['iterations']} iterations: final loss {final:.4f} "
                f"(target < {target}) {'ok' if final < target else 'NOT MET'}",
                flush=True,
            )
    return results


# The shapes comparisons of issue 15: the assignment's LSTM (caption-train's defaults) on the shipped
# features (block4 of a 64-px image, 4x4) and on a finer grid of a larger image (block4 of 96 px, 6x6),
# and the attention LSTM as `make weights` trains it (caption-train's defaults), and without cell positions.
FINER_FEATURES = {"backbone": "efficientnet_lite0", "layer": "block4", "image_size": 96, "grid": 6}
SHAPES_RUNS = {
    "lstm": ("lstm", None, {}),
    "lstm-96px": ("lstm", FINER_FEATURES, {}),
    "attention": ("attention", None, {}),
    "attention-no-positions": ("attention", None, {"cell_positions": False}),
}


def shapes(names: list[str]) -> dict:
    """Train on shapes (timed) and score the 500 test images: exact match (by number of shapes) and BLEU."""
    import tempfile

    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.captioning.evaluation import format_exact
    from a3cli.engine.captioning.features import FeatureSpec
    from a3cli.engine.captioning.shapes import SHAPES_FEATURES, load_shapes
    from a3cli.engine.captioning.training import TrainConfig, train_captioner

    results = {}
    for name in names or list(SHAPES_RUNS):
        cell_type, features, settings = SHAPES_RUNS[name]
        spec = FeatureSpec(**features) if features else SHAPES_FEATURES
        start = time.perf_counter()
        data = load_shapes(load_backbone, spec)
        extracted = time.perf_counter() - start
        with tempfile.TemporaryDirectory() as out:
            metrics = train_captioner(
                data, TrainConfig(cell_type=cell_type, **settings), out, torch.device("cpu"), seed=0
            )
        exact, bleu = metrics["exact_match"]["test"], metrics["bleu"]["test"]
        results[name] = {
            "features": spec.as_dict(),
            "features_seconds": extracted,
            "train_seconds": metrics["train_seconds"],
            "bleu": bleu,
            "exact_match": exact,
        }
        scores = ", ".join(f"{bleu[key]:.3f}" for key in ("bleu1", "bleu2", "bleu3", "bleu4"))
        print(
            f"{name}: {cell_type} on {spec.layer} of {spec.image_size} px, grid {spec.grid}: features "
            f"{extracted:.0f} s (0 when cached), training {metrics['train_seconds']:.0f} s; test exact "
            f"{format_exact(exact)}; BLEU-1..4 {scores}",
            flush=True,
        )
    return results


def distance() -> dict:
    """How far from the shipped captioner's training pictures the shapes pictures and the photos lie: where
    caption-sample's note about shapes (sampling.SHAPES_FAR) is set. The training pictures' features come from
    the feature cache (made once: about a minute)."""
    from a3cli.engine.backbones.registry import load_backbone
    from a3cli.engine.captioning.sampling import SHAPES_FAR, feature_distance, load_captioner, picture_features
    from a3cli.engine.captioning.shapes import draw_scene, load_shapes, shapes_split
    from a3cli.engine.files import EXAMPLES_DIR, SHIPPED_CAPTIONER
    from a3cli.engine.images import load_image

    model, ckpt = load_captioner(SHIPPED_CAPTIONER)

    def distances(pictures: list) -> list[float]:
        return [d for batch in picture_features(model, ckpt, pictures) for d in feature_distance(batch)]

    train = feature_distance(load_shapes(load_backbone).splits["train"].features)  # as caption-train standardises
    held_out = distances([draw_scene(scene) for split in ("val", "test") for scene in shapes_split(split)])
    photos = sorted(EXAMPLES_DIR.glob("*.jpg"))
    shot = dict(zip((path.name for path in photos), distances([load_image(path) for path in photos])))
    spans = {"train": train, "held_out": held_out}
    for name, values in spans.items():
        print(
            f"shapes {name} ({len(values)}): {min(values):.3f} to {max(values):.3f} "
            f"(median {statistics.median(values):.3f})"
        )
    print(
        "photos: " + ", ".join(f"{name} {d:.3f}" for name, d in shot.items()) + f"; the note is said above {SHAPES_FAR}"
    )
    return {**{name: {"min": min(v), "max": max(v)} for name, v in spans.items()}, "photos": shot, "far": SHAPES_FAR}


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "speed"
    runs = {
        "speed": speed,
        "attention": attention,
        "overfit": overfit,
        "shapes": lambda: shapes(sys.argv[2:]),
        "distance": distance,
    }
    if what not in runs or (what == "shapes" and not set(sys.argv[2:]) <= set(SHAPES_RUNS)):
        modes = "|".join(name for name in runs if name != "shapes")
        sys.exit(f"usage: {Path(__file__).name} [{modes}|shapes [{'|'.join(SHAPES_RUNS)}]...]")
    print(json.dumps({what: runs[what]()}))
