"""Tests for a3cli.engine.images on real photographs that scikit-image ships."""

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile
from skimage import data

from a3cli.engine.errors import A3Error
from a3cli.engine.images import (
    enlarged,
    heatmap,
    load_image,
    make_grid,
    overlay,
    save_gif,
    save_image,
    side_by_side,
    to_pil,
    to_tensor,
)

COFFEE = data.coffee()  # (400, 600, 3) uint8
CHELSEA = data.chelsea()  # (300, 451, 3) uint8
ASTRONAUT = data.astronaut()  # (512, 512, 3) uint8
CAMERA = data.camera()  # (512, 512) uint8 grayscale


def pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(np.int32)


def max_diff(a, b) -> int:
    return int(np.abs(np.asarray(a, dtype=np.int32) - np.asarray(b, dtype=np.int32)).max())


def mean_diff(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).mean())


# ---------------------------------------------------------------- loading: formats and modes


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_formats_round_trip_exactly(tmp_path, suffix):
    path = tmp_path / f"coffee{suffix}"
    Image.fromarray(COFFEE).save(path)
    img = load_image(path)
    assert img.size == (600, 400)
    np.testing.assert_array_equal(pixels(img), COFFEE)


@pytest.mark.parametrize("suffix", [".jpg", ".jpeg", ".webp"])
def test_lossy_formats_load_close(tmp_path, suffix):
    path = tmp_path / f"chelsea{suffix}"
    Image.fromarray(CHELSEA).save(path, quality=95)
    img = load_image(path)
    assert img.size == (451, 300)
    assert mean_diff(pixels(img), CHELSEA) < 3


def test_grayscale_gives_three_equal_channels(tmp_path):
    path = tmp_path / "camera.png"
    Image.fromarray(CAMERA).save(path)
    a = pixels(load_image(path))
    assert a.shape == (512, 512, 3)
    for c in range(3):
        np.testing.assert_array_equal(a[..., c], CAMERA)


def test_one_bit_image(tmp_path):
    path = tmp_path / "camera_1bit.png"
    Image.fromarray(CAMERA > 128).save(path)
    assert Image.open(path).mode == "1"
    a = pixels(load_image(path))
    np.testing.assert_array_equal(a[..., 1], np.where(CAMERA > 128, 255, 0))


def test_palette_image(tmp_path):
    pal = Image.fromarray(CHELSEA).quantize(64)
    path = tmp_path / "chelsea_palette.png"
    pal.save(path)
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(pixels(load_image(path)), pixels(pal.convert("RGB")))


@pytest.mark.parametrize("suffix", [".png", ".gif"])
def test_palette_with_transparency_is_white_where_transparent(tmp_path, suffix):
    pal = Image.fromarray(CHELSEA).quantize(16)
    index = np.asarray(pal)
    clear = int(index[0, 0])
    path = tmp_path / f"chelsea_transparent{suffix}"
    pal.save(path, transparency=clear)
    a = pixels(load_image(path))
    expected = pixels(pal.convert("RGB"))
    expected[index == clear] = 255
    assert (index == clear).any() and (index != clear).any()
    np.testing.assert_array_equal(a, expected)


def test_rgba_is_composited_over_white(tmp_path):
    alpha = np.tile(np.linspace(0, 255, 512).round().astype(np.uint8), (512, 1))
    rgba = np.dstack([ASTRONAUT, alpha])
    path = tmp_path / "astronaut_rgba.png"
    Image.fromarray(rgba).save(path)
    a = pixels(load_image(path))
    w = alpha[..., None] / 255.0
    expected = ASTRONAUT * w + 255 * (1 - w)
    assert max_diff(a, expected.round()) <= 1
    assert (a[:, 0] == 255).all()  # fully transparent column is white
    np.testing.assert_array_equal(a[:, -1], ASTRONAUT[:, -1])  # opaque column unchanged


def test_la_is_composited_over_white(tmp_path):
    alpha = np.zeros_like(CAMERA)
    alpha[:, 256:] = 255
    path = tmp_path / "camera_la.png"
    Image.fromarray(np.dstack([CAMERA, alpha])).save(path)
    assert Image.open(path).mode == "LA"
    a = pixels(load_image(path))
    assert (a[:, :256] == 255).all()
    np.testing.assert_array_equal(a[:, 256:, 0], CAMERA[:, 256:])


@pytest.mark.parametrize("suffix,dtype", [(".png", "<u2"), (".tif", "<u2"), (".tif", ">u2")])
def test_16_bit_is_scaled_not_clipped(tmp_path, suffix, dtype):
    path = tmp_path / f"camera16{suffix}"
    Image.fromarray((CAMERA.astype(np.uint16) * 257).astype(dtype)).save(path)
    assert Image.open(path).mode.startswith("I")
    a = pixels(load_image(path))
    assert max_diff(a[..., 0], CAMERA) <= 1
    assert max_diff(a[..., 2], CAMERA) <= 1


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_image(tmp_path, scale):
    path = tmp_path / "camera_float.tif"
    Image.fromarray((CAMERA / 255.0 * scale).astype(np.float32)).save(path)
    assert Image.open(path).mode == "F"
    assert max_diff(pixels(load_image(path))[..., 0], CAMERA) <= 1


@pytest.mark.parametrize("orientation,k", [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, k):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"coffee_orient{orientation}.jpg"
    Image.fromarray(COFFEE).save(path, exif=exif, quality=95)
    img = load_image(path)
    expected = np.rot90(COFFEE, k=k)  # k=-1: 90 degrees clockwise
    assert img.size == (expected.shape[1], expected.shape[0])
    assert mean_diff(pixels(img), expected) < 3


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "coffee_cmyk.jpg"
    Image.fromarray(COFFEE).convert("CMYK").save(path, quality=95)
    assert Image.open(path).mode == "CMYK"
    assert mean_diff(pixels(load_image(path)), COFFEE) < 4


def test_gif_first_frame(tmp_path):
    red, green = torch.zeros(3, 8, 8), torch.zeros(3, 8, 8)
    red[0], green[1] = 1, 1
    path = save_gif([red, green, red], tmp_path / "anim.gif", duration_ms=50)
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    a = pixels(load_image(path))
    assert (a == [255, 0, 0]).all()


# ---------------------------------------------------------------- loading: refusals


def refuse(path, match, **kwargs):
    with pytest.raises(A3Error, match=match) as info:
        load_image(path, **kwargs)
    assert os.path.basename(str(path)) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    refuse(tmp_path / "nope.jpg", "no such file")


def test_directory(tmp_path):
    (tmp_path / "photos.png").mkdir()
    refuse(tmp_path / "photos.png", "directory")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n")
    refuse(path, "not an image Pillow can read")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    refuse(path, "not an image Pillow can read")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.png"
    Image.fromarray(CAMERA).save(path)
    path.chmod(0)
    refuse(path, "permission denied")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file(tmp_path, suffix):
    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(COFFEE).save(whole)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    refuse(cut, "truncated")


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """A 12000x12000 1-bit PNG of zeros: 144 megapixels in about 17 kB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.png"
    Image.new("1", (12000, 12000)).save(path)
    assert path.stat().st_size < 100_000
    return path


def test_decompression_bomb(bomb):
    refuse(bomb, "decompression bomb")
    refuse(bomb, "decompression bomb", max_pixels=10**9)  # Pillow's own limit still holds


def test_max_pixels(tmp_path):
    path = tmp_path / "coffee.png"
    Image.fromarray(COFFEE).save(path)
    refuse(path, "240000 pixels", max_pixels=100_000)
    assert load_image(path, max_pixels=240_000).size == (600, 400)


@pytest.mark.parametrize("limit", [150_000, 1_000])  # Pillow warns at > limit, errors at > 2 * limit
def test_pillow_bomb_warning_and_error_become_a3error(tmp_path, monkeypatch, limit):
    path = tmp_path / "coffee.png"
    Image.fromarray(COFFEE).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    refuse(path, "decompression bomb")


# ---------------------------------------------------------------- tensors


def test_to_tensor_and_back():
    img = Image.fromarray(CHELSEA)
    t = to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 300, 451)
    assert 0 <= t.min() and t.max() <= 1
    assert t[:, 10, 20].mul(255).round().tolist() == CHELSEA[10, 20].tolist()
    np.testing.assert_array_equal(np.asarray(to_pil(t)), CHELSEA)


def test_to_tensor_of_grayscale_and_16_bit():
    t = to_tensor(Image.fromarray(CAMERA))
    assert t.shape == (3, 512, 512) and torch.equal(t[0], t[2])
    t16 = to_tensor(Image.fromarray(CAMERA.astype(np.uint16) * 257))
    assert torch.equal(t16, t)


def test_to_pil_clamps_rounds_and_detaches():
    t = torch.tensor([[-1.0, 2.0], [100.4 / 255, 100.6 / 255]], dtype=torch.float64)
    rgb = torch.stack([t, t, t]).requires_grad_()
    img = to_pil(rgb)
    assert img.mode == "RGB" and img.size == (2, 2)
    assert np.asarray(img)[..., 0].tolist() == [[0, 255], [100, 101]]
    gray = to_pil(t)
    assert gray.mode == "L" and np.asarray(gray).tolist() == [[0, 255], [100, 101]]
    assert np.asarray(to_pil(t[None])).tolist() == [[0, 255], [100, 101]]
    with pytest.raises(ValueError):
        to_pil(torch.zeros(2, 4, 4))


# ---------------------------------------------------------------- saving


@pytest.mark.parametrize(
    "suffix,magic",
    [
        (".png", b"\x89PNG"),
        (".PNG", b"\x89PNG"),
        (".jpg", b"\xff\xd8"),
        (".jpeg", b"\xff\xd8"),
        (".webp", b"RIFF"),
        (".bmp", b"BM"),
        (".gif", b"GIF8"),
        (".tif", b"II*\x00"),
    ],
)
def test_save_image_picks_format_from_suffix(tmp_path, suffix, magic):
    path = save_image(to_tensor(Image.fromarray(CHELSEA)), tmp_path / f"out{suffix}")
    assert path == tmp_path / f"out{suffix}"
    assert path.read_bytes().startswith(magic)
    assert load_image(path).size == (451, 300)
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind


def test_save_png_is_lossless_and_jpeg_close(tmp_path):
    t = to_tensor(Image.fromarray(COFFEE))
    np.testing.assert_array_equal(pixels(load_image(save_image(t, tmp_path / "a.png"))), COFFEE)
    jpeg = save_image(t, tmp_path / "a.jpg")
    assert mean_diff(pixels(load_image(jpeg)), COFFEE) < 3
    reference = io.BytesIO()
    Image.fromarray(COFFEE).save(reference, format="JPEG", quality=95)
    assert jpeg.read_bytes() == reference.getvalue()  # quality 95


def test_save_accepts_pil_numpy_and_gray_tensor(tmp_path):
    save_image(Image.fromarray(COFFEE), tmp_path / "pil.png")
    save_image(COFFEE, tmp_path / "uint8.png")
    save_image(COFFEE / 255.0, tmp_path / "float.png")
    for name in ["pil.png", "uint8.png", "float.png"]:
        np.testing.assert_array_equal(pixels(load_image(tmp_path / name)), COFFEE)
    save_image(torch.from_numpy(CAMERA / 255.0)[None], tmp_path / "gray.png")
    assert Image.open(tmp_path / "gray.png").mode == "L"
    np.testing.assert_array_equal(pixels(load_image(tmp_path / "gray.png"))[..., 0], CAMERA)


def test_save_creates_folders(tmp_path):
    path = save_image(torch.rand(3, 5, 7), tmp_path / "a" / "b" / "c" / "x.png")
    assert path.is_file() and load_image(path).size == (7, 5)


@pytest.mark.parametrize("name", ["x.xyz", "x", "x.txt"])
def test_save_unknown_suffix(tmp_path, name):
    with pytest.raises(A3Error, match="unknown image file type") as info:
        save_image(torch.rand(3, 4, 4), tmp_path / "sub" / name)
    assert name in str(info.value)
    assert not (tmp_path / "sub").exists()


def test_failed_save_keeps_existing_file(tmp_path, monkeypatch):
    path = tmp_path / "result.png"
    save_image(COFFEE, path)
    before = path.read_bytes()

    for bad in ["not an image", COFFEE.astype(np.uint16)]:
        with pytest.raises(TypeError):
            save_image(bad, path)

    def crash(self, fp, *args, **kwargs):  # writes half a file, then fails
        fp.write(before[: len(before) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(A3Error, match="No space left on device"):
        save_image(CHELSEA, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["result.png"]


def test_save_into_a_file_as_folder_is_a3error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(A3Error, match="cannot write"):
        save_image(COFFEE, tmp_path / "file" / "x.png")


def test_save_gif_frames_and_timing(tmp_path):
    frames = [to_tensor(Image.fromarray(CHELSEA)) * s for s in (0.2, 0.6, 1.0)]
    path = save_gif(frames, tmp_path / "sub" / "anim.gif", duration_ms=80, loop=0)
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.size == (451, 300)
        assert gif.info["duration"] == 80 and gif.info["loop"] == 0
        gif.seek(2)
        assert mean_diff(pixels(gif.convert("RGB")), CHELSEA) < 12  # 256-colour palette
    assert os.listdir(path.parent) == ["anim.gif"]
    with pytest.raises(A3Error, match=r"\.gif"):
        save_gif(frames, tmp_path / "anim.png")


# ---------------------------------------------------------------- grids and pictures


def test_make_grid_shape_padding_and_channels():
    images = torch.rand(6, 3, 32, 32) * 0.5
    grid = make_grid(images, nrow=4, padding=2)
    assert grid.shape == (3, 2 * 34 + 2, 4 * 34 + 2)
    assert torch.equal(grid[:, 2:34, 2:34], images[0])
    assert torch.equal(grid[:, 36:68, 36:68], images[5])
    assert (grid[:, 0, :] == 1).all() and (grid[:, 36:68, 70:] == 1).all()  # padding, empty cells
    gray = make_grid([torch.rand(1, 16, 16), torch.rand(3, 16, 16)], nrow=2, padding=0, pad_value=0)
    assert gray.shape == (3, 16, 32)
    assert torch.equal(gray[0, :, :16], gray[2, :, :16])


def test_enlarged_repeats_each_pixel_a_whole_number_of_times():
    image = torch.rand(3, 5, 7)
    big = enlarged(image, 30)  # 30 / 7 rounds up to 5 times
    assert big.shape == (3, 25, 35) and torch.equal(big[:, ::5, ::5], image)
    assert torch.equal(big[:, 10:15, 20:25], image[:, 2:3, 4:5].expand(3, 5, 5))  # one pixel, one square
    assert torch.equal(enlarged(image, 7), image) and torch.equal(enlarged(image, 1), image)


def test_heatmap_of_ramp_follows_colormap():
    import matplotlib

    ramp = torch.linspace(-3, 5, 256).repeat(4, 1)
    h = heatmap(ramp)
    assert h.shape == (3, 4, 256) and h.dtype == torch.float32
    assert 0 <= h.min() and h.max() <= 1
    cmap = matplotlib.colormaps["inferno"]
    assert torch.allclose(h[:, 0, 0], torch.tensor(cmap(0.0)[:3], dtype=torch.float32))
    assert torch.allclose(h[:, 0, -1], torch.tensor(cmap(1.0)[:3], dtype=torch.float32))
    brightness = h[:, 0].sum(0)  # inferno gets brighter monotonically
    assert (brightness[1:] >= brightness[:-1]).all() and brightness[-1] > brightness[0] + 1
    assert torch.allclose(heatmap(ramp * 100 + 7), h)  # only relative values matter
    assert torch.allclose(heatmap(ramp, "gray")[0, 0], torch.linspace(0, 1, 256), atol=1 / 255)


def test_heatmap_of_constant_map_is_finite():
    h = heatmap(torch.full((5, 6), 3.0))
    assert torch.isfinite(h).all()
    assert torch.equal(h, h[:, :1, :1].expand(3, 5, 6))
    with pytest.raises(A3Error, match="colormap"):
        heatmap(torch.rand(4, 4), cmap="no-such-map")


def test_overlay():
    image = to_tensor(Image.fromarray(COFFEE).reduce(4))  # 100 x 150
    values = torch.rand(7, 9)
    out = overlay(image, values, alpha=0.5)
    assert out.shape == image.shape and 0 <= out.min() and out.max() <= 1
    assert torch.allclose(overlay(image, values, alpha=0.0), image)
    full = overlay(image, values, alpha=1.0)
    assert torch.allclose(out, 0.5 * image + 0.5 * full, atol=1e-6)
    same_size = torch.rand(100, 150)
    assert torch.allclose(overlay(image, same_size, alpha=1.0), heatmap(same_size), atol=1e-5)


def test_side_by_side():
    a = to_tensor(Image.fromarray(COFFEE))  # 400 x 600
    b = to_tensor(Image.fromarray(CHELSEA))  # 300 x 451
    c = to_tensor(Image.fromarray(CAMERA))[:1]  # 512 x 512, one channel
    row = side_by_side([a, b, c], padding=4)
    assert row.shape == (3, 512 + 8, 768 + 770 + 512 + 16)
    assert torch.equal(row[:, 4:516, 4 + 768 + 4 + 770 + 4 : -4], c.expand(3, -1, -1))
    assert (row[:, :4] == 1).all() and (row[:, :, 772:776] == 1).all()
    assert 0 <= row.min() and row.max() <= 1

    small = side_by_side([a, b], padding=0, height=100)
    assert small.shape == (3, 100, 150 + 150)
    assert mean_diff(small[:, :, :150], torch.nn.functional.avg_pool2d(a[None], 4)[0]) < 0.02


def test_a_title_and_labels_sit_in_a_white_strip_above_the_picture_untouched():
    from a3cli.engine.images import side_by_side, tile_numbers, titled
    from tests.helpers import TITLE_LINE

    picture = torch.rand(3, 40, 300)
    one = titled(picture, "iteration 4,000, Fréchet distance 15.6")
    assert one.shape == (3, 40 + TITLE_LINE, 300) and torch.equal(one[:, TITLE_LINE:], picture)
    strip = one[:, :TITLE_LINE]
    assert strip.max() == 1 and 0 < (strip < 0.5).float().mean() < 0.5  # dark letters on white
    wrapped = titled(picture[:, :, :100], "a title far too long for one line of a narrow picture")
    assert wrapped.shape[1] > 40 + TITLE_LINE  # wrapped over more lines, never cut
    row = side_by_side([torch.zeros(3, 30, 30), torch.zeros(3, 30, 30)], labels=["content", "result"])
    assert row.shape[1] == 30 + 8 + TITLE_LINE
    left, right = row[:, :TITLE_LINE, :34], row[:, :TITLE_LINE, 34:]
    assert (left < 0.5).any() and (right < 0.5).any()  # each panel's label above it
    grid = torch.zeros(3, 2 + 2 * 66, 2 + 2 * 66)
    numbered = tile_numbers(grid, [3, 7, 11, 15], 2, 64)
    for x, y in ((2, 2), (68, 2), (2, 68), (68, 68)):  # a white box in each tile's corner
        assert numbered[:, y : y + 8, x : x + 8].max() == 1
    assert numbered[:, 40:60, 40:60].max() == 0  # the rest of the tiles untouched


def test_a_model_grid_says_which_model_iteration_and_distance():
    from a3cli.engine.generative.pictures import distance_at, model_title

    history = [
        {"iteration": 500, "ema": {"frechet_distance": 30.0}},
        {"iteration": 1000, "ema": {"frechet_distance": 15.56}},
    ]
    assert distance_at(history, 1000, "ema") == 15.56 and distance_at(history, 1500, "ema") is None
    assert distance_at(history, 1000, "generator") is None and distance_at([], 0, "ema") is None
    assert model_title("dcgan", 1000, 15.56, 1000) == "dcgan, iteration 1,000, Fréchet distance 15.6 (1,000 samples)"
    assert model_title("diffusion", 3, None) == "diffusion, iteration 3"


def test_a_good_picture_that_does_not_fit_in_memory_is_not_called_corrupt(monkeypatch):
    monkeypatch.setattr(Image.Image, "load", lambda self: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):  # the CLI says "out of memory"; never "corrupt or unsupported image"
        load_image(data.data_dir + "/coffee.png")
