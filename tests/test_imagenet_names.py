"""Class lookup by index or any WordNet synonym, against torchvision's class list."""

from __future__ import annotations

import pytest

from a3cli.engine.backbones.imagenet_names import imagenet_synonyms, normalize_name, resolve_class
from a3cli.engine.backbones.registry import imagenet_classes
from a3cli.engine.errors import A3Error
from tests.conftest import EXAMPLES


def test_lemma_lines_follow_torchvision_order():
    classes, synonyms = imagenet_classes(), imagenet_synonyms()
    assert len(synonyms) == len(classes) == 1000
    mismatched = [
        i
        for i, (name, names) in enumerate(zip(classes, synonyms))
        if normalize_name(name) not in {normalize_name(s) for s in names}
    ]
    # torchvision renamed two classes to keep its names unique; every other name is a lemma of its line.
    assert mismatched == [134, 639]
    assert synonyms[134] == ["crane"] and synonyms[0] == ["tench", "Tinca tinca"]


@pytest.mark.parametrize(
    "spec, index",
    [
        ("tarantula", 76),
        ("Egyptian cat", 285),
        ("espresso", 967),
        ("ESPRESSO", 967),
        ("tabby cat", 281),
        ("Tinca tinca", 0),
        ("great_white-shark", 2),
        ("  red   panda ", 387),
        ("281", 281),
        (281, 281),
        ("0", 0),
        ("crane", 517),
        ("crane bird", 134),  # torchvision's own names win over a shared synonym
    ],
)
def test_resolve_class(spec, index):
    assert resolve_class(spec, imagenet_classes()) == index


@pytest.mark.parametrize(
    "spec, parts",
    [
        ("tarantla", ["unknown class 'tarantla'", "tarantula (76)"]),
        ("gold fish", ["goldfish (1)"]),
        ("cat", ["tabby cat (281)", "Persian cat (283)"]),
        ("panda", ["ambiguous", "387 lesser panda", "388 giant panda"]),
        ("cardigan", ["ambiguous", "264 Cardigan", "474 cardigan"]),
        ("1000", ["out of range", "0 to 999"]),
        ("-3", ["out of range"]),
        ("  ", ["empty class name"]),
    ],
)
def test_resolve_class_refuses_with_suggestions(spec, parts):
    with pytest.raises(A3Error) as error:
        resolve_class(spec, imagenet_classes())
    message = str(error.value)
    assert "\n" not in message
    for part in parts:
        assert part in message


def test_the_plain_text_class_names_are_torchvisions():
    from torchvision.models import SqueezeNet1_1_Weights

    from a3cli.engine.backbones.imagenet_classes import IMAGENET_CLASSES

    assert list(IMAGENET_CLASSES) == SqueezeNet1_1_Weights.IMAGENET1K_V1.meta["categories"]


@pytest.mark.parametrize(
    "argv",
    [
        ["fool", str(EXAMPLES / "chelsea.jpg"), "--target", "tarantulla"],
        ["classvis", "--class", "flamengo"],
        ["saliency", str(EXAMPLES / "chelsea.jpg"), "--class", "egyptain cat"],
    ],
)
def test_a_mistyped_class_is_refused_before_torch_is_imported(argv):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from a3cli.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit as e:\n"
        "    print('EXIT', e.code)\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["EXIT", "2", "NO-TORCH"], result.stdout
    assert result.stderr.startswith("error: unknown class") and "closest: " in result.stderr
