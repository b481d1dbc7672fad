"""Image input and output shared by every command.

Everything that reads a picture goes through `load_image`, so every command
accepts the same formats and refuses bad files with the same clear message.
Everything that writes a picture goes through `save_image` or `save_gif`, which
write atomically, so an interrupted run never leaves a half-written file.
Inside the engine images are float tensors (3, H, W) with values in [0, 1].
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from a3cli.engine.errors import A3Error
from a3cli.engine.files import atomic_write

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(path: str | os.PathLike, max_pixels: int = 100_000_000) -> Image.Image:
    """Read an image file of any format Pillow knows and return it in mode RGB.

    Transparent images are composited over white, 16-bit and float images are
    scaled rather than clipped, and the EXIF orientation is applied, so what
    the commands see is what an image viewer shows. Images with more than
    `max_pixels` pixels are refused before they are decoded (Pillow's own
    decompression-bomb limit, `Image.MAX_IMAGE_PIXELS`, applies as well).
    """
    path = Path(path)

    def fail(reason: str) -> A3Error:
        return A3Error(f"cannot read image '{path}': {reason}")

    if path.is_dir():
        raise fail("it is a directory")
    if not path.exists():
        raise fail("no such file")
    if not path.is_file():
        raise fail("not a regular file")
    try:
        with warnings.catch_warnings():
            # Pillow only warns about images a bit over its limit; refuse them too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise fail(
                        f"{width}x{height} is {width * height} pixels, more than the "
                        f"limit of {max_pixels} (possible decompression bomb)"
                    )
                img.load()  # decode now so truncated or corrupt data is found here
                return _to_rgb(ImageOps.exif_transpose(img))
    except A3Error:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise fail(f"too large, possible decompression bomb ({e})") from None
    except UnidentifiedImageError:
        raise fail("not an image Pillow can read") from None
    except FileNotFoundError:
        raise fail("no such file") from None
    except PermissionError:
        raise fail("permission denied") from None
    except MemoryError:
        raise  # not the picture's fault: the CLI names it as memory
    except Exception as e:  # Pillow signals bad data with many exception types
        raise fail(f"corrupt or unsupported image ({e or type(e).__name__})") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in _SIXTEEN_BIT_MODES or img.mode == "F":
        a = np.nan_to_num(np.asarray(img).astype(np.float64))
        if img.mode in _SIXTEEN_BIT_MODES:
            a = a / 257.0  # 0..65535 -> 0..255 (convert('RGB') would clip instead)
        elif a.size and a.max() <= 1.0:
            a = a * 255.0  # float images in 0..1
        gray = np.clip(np.round(a), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL image -> float32 tensor (3, H, W) with values in [0, 1]."""
    a = np.asarray(_to_rgb(img), dtype=np.uint8)
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(255.0)


MAX_RESIZED_PIXELS = 50_000_000  # what a resize may make: a 5 x 5000 strip scaled to 256 px would be 65 GB


def shorter_side_size(img: Image.Image, size: int) -> tuple[int, int]:
    """(width, height) with the shorter side at `size`, aspect ratio kept; refused if it would be huge."""
    scale = size / min(img.size)
    width, height = max(1, round(img.width * scale)), max(1, round(img.height * scale))
    if width * height > MAX_RESIZED_PIXELS:
        raise A3Error(
            f"a {img.width}x{img.height} image resized to {size} px on its shorter side would be "
            f"{width}x{height} pixels: crop it to a less elongated shape, or use a smaller size"
        )
    return width, height


def resize_shorter_side(img: Image.Image, size: int) -> Image.Image:
    """Shorter side to `size`, aspect ratio kept, bicubic (the assignment's T.Resize(size))."""
    return img.resize(shorter_side_size(img, size), Image.Resampling.BICUBIC)


def centre_square(img: Image.Image, size: int, resample: Image.Resampling) -> Image.Image:
    """The largest centred square of `img`, resized to size×size."""
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return img.crop((left, top, left + side, top + side)).resize((size, size), resample)


def quantize(t: torch.Tensor) -> torch.Tensor:
    """Values in [0, 1] as an 8-bit file stores them: clamped and rounded to steps of 1/255."""
    return (t.clamp(0, 1) * 255).round() / 255


def to_pil(t: torch.Tensor) -> Image.Image:
    """Tensor (3, H, W), (1, H, W) or (H, W) in [0, 1] -> PIL image (RGB or L).

    Values are clamped and rounded; the tensor may live on any device, have any
    float dtype and require grad.
    """
    t = t.detach().to("cpu", torch.float32)
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (3,H,W), (1,H,W) or (H,W), got {tuple(t.shape)}")
    t = torch.nan_to_num(t, nan=0.0).clamp(0, 1).mul(255).round().to(torch.uint8)
    if t.shape[0] == 1:
        return Image.fromarray(t[0].numpy())
    return Image.fromarray(t.permute(1, 2, 0).contiguous().numpy())


def _as_pil(image) -> Image.Image:
    """Tensor, PIL image or numpy array (H, W) / (H, W, 3) -> PIL image."""
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, torch.Tensor):
        return to_pil(image)
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8:
            return Image.fromarray(image)
        if np.issubdtype(image.dtype, np.floating):  # values in [0, 1]
            t = torch.from_numpy(np.asarray(image, dtype=np.float32))
            return to_pil(t.movedim(-1, 0) if t.dim() == 3 else t)
    kind = f"{type(image).__name__} {getattr(image, 'dtype', '')}".strip()
    raise TypeError(f"expected a tensor, a PIL image or a uint8/float numpy array, not {kind}")


def _format_for(path: Path) -> str:
    """The Pillow format name for the file suffix, or A3Error."""
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise A3Error(
            f"cannot save image '{path}': unknown image file type '{path.suffix}' "
            "(use .png, .jpg, .webp, .bmp, .gif or .tif)"
        )
    return fmt


def save_image(image: torch.Tensor | Image.Image | np.ndarray, path: str | os.PathLike) -> Path:
    """Save an image in the format its suffix names, atomically; returns the path.

    Tensors are (3, H, W) or (1, H, W) in [0, 1]; numpy arrays are (H, W) or
    (H, W, 3), uint8 or float in [0, 1]. Missing parent folders are created.
    """
    path = Path(path)
    fmt = _format_for(path)
    img = _as_pil(image)
    params = {"quality": 95} if fmt == "JPEG" else {}
    return atomic_write(path, lambda f: img.save(f, format=fmt, **params))


def save_gif(
    frames: list[Image.Image | torch.Tensor],
    path: str | os.PathLike,
    duration_ms: int = 100,
    loop: int = 0,
) -> Path:
    """Save frames as an animated GIF (loop=0 repeats forever), atomically."""
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise A3Error(f"cannot save animation '{path}': the file name must end in .gif")
    if not frames:
        raise ValueError("save_gif needs at least one frame")
    images = [_as_pil(f).convert("RGB") for f in frames]
    return atomic_write(
        path,
        lambda f: images[0].save(
            f, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=loop
        ),
    )


def _three_channels(t: torch.Tensor) -> torch.Tensor:
    """(1, H, W) -> (3, H, W) by repeating the channel; (3, H, W) unchanged."""
    t = t.detach().float()
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (3,H,W) or (1,H,W), got {tuple(t.shape)}")
    return t.expand(3, -1, -1)


def make_grid(
    images: torch.Tensor | list[torch.Tensor],
    nrow: int | None = None,
    padding: int = 2,
    pad_value: float = 1.0,
) -> torch.Tensor:
    """Tile images (N, C, H, W) or a list of (C, H, W), C = 1 or 3, into one (3, H', W') image.

    `nrow` images per row; by default ⌈√N⌉, which makes the grid about square.
    """
    if isinstance(images, torch.Tensor) and images.dim() == 4:
        images = list(images)
    import torchvision  # heavy, and only needed here

    batch = torch.stack([_three_channels(t) for t in images])
    nrow = nrow or math.ceil(math.sqrt(len(batch)))
    return torchvision.utils.make_grid(batch, nrow=nrow, padding=padding, pad_value=pad_value)


def enlarged(image: torch.Tensor, min_width: int) -> torch.Tensor:
    """(C, H, W) repeated a whole number of times along both sides to be at least `min_width` wide:
    nearest neighbour, so small pixels stay crisp squares rather than blur."""
    factor = max(1, math.ceil(min_width / image.shape[-1]))
    return image.repeat_interleave(factor, dim=-1).repeat_interleave(factor, dim=-2)


def heatmap(values: torch.Tensor, cmap: str = "inferno") -> torch.Tensor:
    """Colour a map (H, W) with a matplotlib colormap -> (3, H, W) in [0, 1].

    Values are min-max normalised; a constant map gets the colormap's lowest colour.
    Only matplotlib's colormap registry is used (no pyplot), so no GUI backend loads.
    """
    import matplotlib

    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError:
        raise A3Error(f"unknown colormap '{cmap}' (try inferno, viridis, magma, jet, gray)") from None
    v = values.detach().to("cpu", torch.float64)
    if v.dim() != 2:
        raise ValueError(f"expected a map (H, W), got {tuple(v.shape)}")
    lo, hi = v.min(), v.max()
    v = (v - lo) / (hi - lo) if hi > lo else torch.zeros_like(v)
    rgb = colormap(v.numpy())[..., :3]
    return torch.from_numpy(rgb).permute(2, 0, 1).float().to(values.device)


def overlay(
    image: torch.Tensor,
    values: torch.Tensor,
    alpha: float = 0.5,
    cmap: str = "inferno",
) -> torch.Tensor:
    """Blend a heat map of `values` (H', W') over `image` (3, H, W): (1-alpha)*image + alpha*heat."""
    image = _three_channels(image)
    v = values.detach().float()
    if v.dim() != 2:
        raise ValueError(f"expected a map (H, W), got {tuple(v.shape)}")
    # Resize the values, not the colours, so blended pixels stay on the colormap.
    v = F.interpolate(v[None, None], size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    heat = heatmap(v, cmap).to(image.device)
    return ((1 - alpha) * image + alpha * heat).clamp(0, 1)


def side_by_side(
    images: list[torch.Tensor],
    padding: int = 4,
    height: int | None = None,
    labels: list[str] | None = None,
) -> torch.Tensor:
    """Place images (3, H, W) of any sizes in one row, each resized to a common height.

    The height defaults to the tallest image; widths keep each aspect ratio.
    Panels are separated and framed by `padding` white pixels; `labels` name them above.
    """
    if not images:
        raise ValueError("side_by_side needs at least one image")
    device = images[0].device
    panels = [_three_channels(t).to(device) for t in images]
    height = height or max(p.shape[1] for p in panels)
    resized = []
    for p in panels:
        h, w = p.shape[1:]
        if h != height:
            width = max(1, round(w * height / h))
            p = F.interpolate(p[None], size=(height, width), mode="bilinear", align_corners=False, antialias=True)[
                0
            ].clamp(0, 1)
        resized.append(p)
    total = sum(p.shape[2] for p in resized) + padding * (len(resized) + 1)
    out = torch.ones(3, height + 2 * padding, total, device=device)
    x, starts = padding, []
    for p in resized:
        out[:, padding : padding + height, x : x + p.shape[2]] = p
        starts.append(x)
        x += p.shape[2] + padding
    return titled(out, "", list(zip(starts, labels))) if labels else out


LABEL_SIZE = 14  # px: the text of titles and labels drawn on pictures


def _label_font(size: int = LABEL_SIZE):
    """DejaVu Sans, which matplotlib ships (Pillow's own default font lacks letters such as é)."""
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


def _wrapped_lines(text: str, width: int, font) -> list[str]:
    """`text` broken at spaces into lines that fit `width` px."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines


def titled(image: torch.Tensor, title: str, labels: list[tuple[int, str]] | None = None) -> torch.Tensor:
    """The picture (3, H, W) under a white strip that holds `title` (wrapped to its width), and under that
    `labels`, each (x, text), at their x: what a figure says about itself, drawn into it."""
    from PIL import ImageDraw

    font, line = _label_font(), LABEL_SIZE + 6
    lines = _wrapped_lines(title, image.shape[-1] - 8, font) if title else []
    strip = Image.new("RGB", (image.shape[-1], (len(lines) + bool(labels)) * line + 4), "white")
    draw = ImageDraw.Draw(strip)
    for k, text in enumerate(lines):
        draw.text((4, 3 + k * line), text, fill="black", font=font)
    for x, text in labels or []:
        draw.text((x, 3 + len(lines) * line), text, fill="black", font=font)
    return torch.cat([to_tensor(strip).to(image.device), _three_channels(image)], dim=1)


def tile_numbers(grid: torch.Tensor, numbers: list[int], nrow: int, tile: int, padding: int = 2) -> torch.Tensor:
    """The grid (3, H, W) of make_grid (tiles `tile` px, `nrow` a row) with each tile's number in its corner,
    black on a white box: which channel each picture of a sheet is."""
    from PIL import ImageDraw

    picture = to_pil(grid)
    draw = ImageDraw.Draw(picture)
    font = _label_font(max(10, min(LABEL_SIZE, tile // 5)))
    for k, number in enumerate(numbers):
        x = padding + (k % nrow) * (tile + padding)
        y = padding + (k // nrow) * (tile + padding)
        box = draw.textbbox((x + 2, y + 1), str(number), font=font)
        draw.rectangle(box, fill="white")
        draw.text((x + 2, y + 1), str(number), fill="black", font=font)
    return to_tensor(picture).to(grid.device)
