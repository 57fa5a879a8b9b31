"""The command line answers at once: building the parser and printing any command's help
imports none of the heavy libraries (they load when a command runs)."""

import subprocess
import sys

import pytest

HEAVY = (
    "torch", "torchvision", "matplotlib", "captum", "pandas", "cv2", "scipy", "sklearn", "onnx",
    "onnxruntime", "onnx2torch",
)  # fmt: skip
COMMANDS = (
    "demo run synth data align regions train adopt evaluate compare explain average predict share "
    "ablate export agreement "
    "null validate figures report"
).split()

PROBE = """
import contextlib, io, json, sys
from saliency.cli import build_parser
argv = json.loads(sys.argv[1])
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        build_parser().parse_args(argv)
except SystemExit:
    pass
heavy = sorted({m.split('.')[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"heavy": heavy, "help": out.getvalue()}))
"""


def _probe(argv: list[str]) -> dict:
    import json

    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_building_the_parser_imports_no_heavy_library():
    res = _probe(["--help"])
    assert res["heavy"] == [], res["heavy"]
    assert all(c in res["help"] for c in COMMANDS)  # every command is listed


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_imports_no_heavy_library(command):
    argv = ["data", "import", "--help"] if command == "data" else [command, "--help"]
    res = _probe(argv)
    assert res["heavy"] == [], res["heavy"]
    assert "usage: saliency" in res["help"]


def test_names_the_help_offers_are_the_ones_the_code_implements():
    import numpy as np

    from saliency.data.importers import FORMATS
    from saliency.data.names import FORMAT_NAMES
    from saliency.methods.gradcam import COMBINE
    from saliency.methods.names import GRADCAM_FAMILY
    from saliency.models.backbones import torchvision_arch
    from saliency.models.names import ARCHS, TIMM_ARCHS
    from saliency.perturb.fill import fill_source
    from saliency.perturb.names import FILLS

    assert tuple(FORMATS) == FORMAT_NAMES
    assert tuple(COMBINE) == GRADCAM_FAMILY
    for arch in ARCHS:  # each name the help offers builds from torchvision (with weights)
        if arch in TIMM_ARCHS:  # or from timm
            import timm

            assert timm.is_model(arch)
            continue
        build, weights = torchvision_arch(arch)
        assert callable(build) and weights.url.endswith(".pth")
    image = np.full((8, 8, 3), 100, np.uint8)
    for fill in FILLS:
        assert fill_source(image, fill).shape == image.shape
    with pytest.raises(ValueError, match="valid: blur"):
        fill_source(image, "smudge")
