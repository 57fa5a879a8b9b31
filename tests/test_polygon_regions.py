"""Region masks from 68 landmarks (no face parser) and the dilated, feathered fill masks."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from saliency.data.imageio import read_label_map, read_rgb
from saliency.data.manifest import read_manifest
from saliency.data.regions import REGION_CODES, REGIONS
from saliency.data.synth.config import SynthConfig
from saliency.data.synth.generate import generate
from saliency.faces.polygons import FIVE_POINT_REASON, landmark_regions, landmark_shapes
from saliency.perturb.fill import (
    blur_fill,
    box_size,
    dilation_radius,
    feather_half_width,
    feather_sigma,
    fill_mask,
    fill_masks,
)

# acceptance criteria: mean IoU over faces against the generator's exact masks
MIN_MEAN_IOU = {"eyes": 0.6, "brows": 0.6, "nose": 0.6, "mouth": 0.6, "skin": 0.8, "hair": 0.6}


@pytest.fixture(scope="module")
def synth_faces(tmp_path_factory):
    """40 synthetic faces at 128 px: images, exact label maps, landmarks ``[40, 68, 2]``."""
    out = tmp_path_factory.mktemp("synth_regions")
    generate(SynthConfig(n=40, size=128, seed=21), out, workers=2)
    manifest = read_manifest(out / "manifest.csv")
    images = [read_rgb(p) for p in manifest.abspaths()]
    truth = [read_label_map(manifest.abspath(p)) for p in manifest.df["mask"]]
    return images, truth, manifest.landmarks()


@pytest.fixture(scope="module")
def predicted(synth_faces):
    images, _, landmarks = synth_faces
    return [landmark_regions(lm, img) for img, lm in zip(images, landmarks, strict=True)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


@pytest.mark.parametrize("region", REGIONS)
def test_mean_iou_against_exact_synthetic_masks(synth_faces, predicted, region):
    _, truth, _ = synth_faces
    code = REGION_CODES[region]
    ious = [_iou(p == code, t == code) for p, t in zip(predicted, truth, strict=True)]
    assert np.mean(ious) >= MIN_MEAN_IOU[region], (region, np.round(ious, 2))


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of each point ``[P, 2]`` to the nearest of the segments ``a[k] -> b[k]``."""
    (ax, ay), (ux, uy) = a.T, (b - a).T
    px, py = points[:, :1] - ax, points[:, 1:] - ay  # [P, S]
    t = np.clip((px * ux + py * uy) / np.maximum(ux * ux + uy * uy, 1e-12), 0, 1)
    return np.sqrt(((px - t * ux) ** 2 + (py - t * uy) ** 2).min(axis=1))


def _depth(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Signed distance of each point to a closed polygon's outline: + inside, - outside."""
    from matplotlib.path import Path

    d = _segment_distance(points, polygon, np.roll(polygon, -1, axis=0))
    return np.where(Path(polygon).contains_points(points), d, -d)


def _precedence_by_hand(lm: np.ndarray, shape: tuple[int, int]):
    """The label map the documented precedence gives (eyes > mouth > brows > nose > skin),
    from the landmark groups of DESIGN.md alone, at the pixels where it is certain whatever
    the smooth outlines do: each region is surely in or surely out of a pixel by a margin
    around plain polygons and lines through its landmarks (eyes 36-41 / 42-47, outer lips
    48-59, brow lines 17-21 / 22-26 with the documented thickness 0.14 iod, nose bridge
    27-30 of width 0.22 iod and the triangle 30, 31, 35 below it, the jaw 0-16 closed by its
    ends). Returns codes ``[H, W]`` (-1: uncertain) and the surely-in masks."""
    from scipy.spatial import ConvexHull

    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    p = np.stack([xx.ravel(), yy.ravel()], 1).astype(float)  # pixel (row i, col j) at (j, i)
    eye_to_eye = lm[42:48].mean(0) - lm[36:42].mean(0)
    iod = float(np.linalg.norm(eye_to_eye))
    down = np.array([-eye_to_eye[1], eye_to_eye[0]]) / iod  # the face's own down
    eyes = np.maximum(_depth(p, lm[36:42]), _depth(p, lm[42:48]))
    mouth = _depth(p, lm[48:60])
    half = 0.07 * iod  # half the brow band
    brow = np.minimum(_segment_distance(p, lm[17:21], lm[18:22]),
                      _segment_distance(p, lm[22:26], lm[23:27]))  # fmt: skip
    ends = np.min([np.linalg.norm(p - lm[i], axis=1) for i in (17, 21, 22, 26)], axis=0)
    bridge = _segment_distance(p, lm[27:30], lm[28:31])
    bridge[(p - lm[27]) @ down < 0] = np.inf  # the band starts at the nasion, no cap above
    hull = lm[27:36][ConvexHull(lm[27:36]).vertices]
    beyond = 0.2 * iod + 0.3 * np.linalg.norm(lm[35] - lm[31]) + 1.5  # bridge, alae, base
    jaw = _depth(p, lm[0:17])
    below_ears = (p - 0.5 * (lm[0] + lm[16])) @ down > 1.5
    sure = {  # region: (surely in, surely out)
        "eyes": (eyes > 1.5, eyes < -2.0),
        "mouth": (mouth > 1.5, mouth < -2.0),
        "brows": ((brow < half - 1.0) & (ends > half), brow > half + 1.5),
        "nose": (
            (bridge < 0.11 * iod - 1.0) | (_depth(p, lm[[30, 35, 31]]) > 1.0),
            _depth(p, hull) < -beyond,
        ),
        "skin": (jaw > 1.5, (jaw < -1.5) & below_ears),  # the forehead is left uncertain
    }
    label, open_ = np.full(len(p), -1), np.ones(len(p), bool)
    for name, (inside, outside) in sure.items():
        label[open_ & inside] = REGION_CODES[name]
        open_ &= outside
    label[open_] = 0  # surely outside every region: background
    return label.reshape(shape), {k: v[0].reshape(shape) for k, v in sure.items()}


def test_label_map_is_exclusive_with_documented_precedence(synth_faces, predicted):
    """One code per pixel; without hair, every pixel whose region the landmark groups settle
    (_precedence_by_hand) has that region's code; hair takes only skin or background."""
    images, _, landmarks = synth_faces
    for labels, image, lm in zip(predicted[:5], images[:5], landmarks[:5], strict=True):
        assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
        assert set(np.unique(labels)) <= set(range(7))
        assert set(range(6)) <= set(np.unique(labels))  # background and the five polygons
        no_hair = landmark_regions(lm, image, hair=False)
        want, _ = _precedence_by_hand(lm.astype(np.float64), labels.shape)
        certain = want >= 0
        assert certain.mean() > 0.35  # measured 0.42-0.49: faces, jaw line, background
        np.testing.assert_array_equal(no_hair[certain], want[certain])
        # the hair estimate changes only pixels that were skin or background
        hair = labels == REGION_CODES["hair"]
        assert hair.sum() > 0.02 * hair.size
        np.testing.assert_array_equal(labels[~hair], no_hair[~hair])
        assert set(np.unique(no_hair[hair])) <= {0, REGION_CODES["skin"]}


def test_overlapping_shapes_are_resolved_by_the_documented_precedence(synth_faces):
    """Landmarks bent so that shapes overlap (face 0 at twice its size): the left brow drawn
    through the left eye and across a raised nasion, the right brow through the mouth, the
    nose stretched down to the lower lip. Where two regions are both certain, the first in
    the precedence wins: eyes over brows, mouth over brows and nose, brows over nose (with
    any two of eyes, mouth, brows, nose swapped, 65 to 278 certain pixels change)."""
    lm = synth_faces[2][0].astype(np.float64) * 2
    lm[17:22, 1] += lm[36:42, 1].mean() - lm[17:22, 1].mean()
    lm[21, 0] = 0.5 * (lm[21, 0] + lm[22, 0]) + 12  # the inner end crosses the bridge
    lips = lm[48:60]
    lm[22:27, 0] = np.linspace(lips[:, 0].min() + 4, lips[:, 0].max() - 4, 5)
    lm[22:27, 1] = lips[:, 1].mean()
    lm[27, 1] -= 24  # a raised nasion: the bridge runs through the left brow
    top = lm[27, 1]
    lm[28:36, 1] = top + (lm[28:36, 1] - top) * (lm[57, 1] - top) / (lm[33, 1] - top)
    labels = landmark_regions(lm, size=(256, 256), hair=False)
    want, inside = _precedence_by_hand(lm, labels.shape)
    certain = want >= 0
    np.testing.assert_array_equal(labels[certain], want[certain])
    order = ["eyes", "mouth", "brows", "nose"]
    for first, second in (("eyes", "brows"), ("mouth", "brows"), ("mouth", "nose"),
                          ("brows", "nose")):  # fmt: skip
        both = inside[first] & inside[second]
        for earlier in order[: order.index(first)]:  # the right brow and nose in the mouth
            both &= ~inside[earlier]
        assert both.sum() >= 20, (first, second)  # they do overlap, surely (measured 45-161)
        assert (labels[both] == REGION_CODES[first]).all()


def test_hair_never_in_the_face_below_the_brows(synth_faces, predicted):
    _, _, landmarks = synth_faces
    for labels, lm in zip(predicted, landmarks, strict=True):
        oval = landmark_shapes(lm, labels.shape)["oval"]
        rows = np.arange(labels.shape[0])[:, None]
        below_brows = rows > lm[17:27, 1].max() + 3  # faces are nearly upright here
        assert not (oval & below_brows & (labels == REGION_CODES["hair"])).any()


def test_without_hair_or_image(synth_faces):
    images, _, landmarks = synth_faces
    no_hair = landmark_regions(landmarks[0], images[0], hair=False)
    assert REGION_CODES["hair"] not in no_hair
    from_size = landmark_regions(landmarks[0], hair=False, size=images[0].shape[:2])
    np.testing.assert_array_equal(no_hair, from_size)
    with pytest.raises(ValueError, match="needs the RGB image"):
        landmark_regions(landmarks[0], size=(128, 128))


def test_five_landmarks_give_the_skip_reason():
    five = np.array([[40, 50], [88, 50], [64, 70], [46, 90], [82, 90]], np.float32)
    image = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(ValueError, match=re.escape(FIVE_POINT_REASON)):
        landmark_regions(five, image)
    assert FIVE_POINT_REASON == "5 landmarks: region masks need 68 points or a face parser"
    with pytest.raises(ValueError, match="68 landmarks"):
        landmark_regions(np.zeros((67, 2)), image)


# ---- fill masks ----


def _square_dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _toy_labels(side: int) -> np.ndarray:
    """A face-like label map at ``side`` px: skin oval, two eyes, hair cap."""
    k = side / 224
    labels = np.zeros((side, side), np.uint8)
    c = (round(112 * k), round(118 * k))
    cv2.ellipse(labels, c, (round(62 * k), round(80 * k)), 0, 0, 360, REGION_CODES["skin"], -1)
    cv2.ellipse(labels, c, (round(70 * k), round(90 * k)), 0, 180, 360, REGION_CODES["hair"], -1)
    for x in (84, 140):
        axes = (round(14 * k), round(6 * k))
        cv2.ellipse(labels, (round(x * k), round(110 * k)), axes, 0, 0, 360, 3, -1)
    return labels


def test_fill_mask_at_224_reproduces_the_reference():
    labels = _toy_labels(224)
    eyes = labels == REGION_CODES["eyes"]
    mask = fill_mask(labels, "eyes")
    assert mask.dtype == np.float32 and mask.shape == labels.shape
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    assert dilation_radius("eyes", 224) == 8 and feather_half_width(224) == 15
    # the reference: four dilations with a 5 x 5 square, then a Gaussian of sigma 5
    ref = cv2.dilate(eyes.astype(np.uint8), np.ones((5, 5), np.uint8), iterations=4)
    ref = cv2.GaussianBlur(ref.astype(np.float64), (31, 31), 5.0, 5.0)
    np.testing.assert_allclose(mask, ref, atol=1e-6)
    # support: the region dilated by 8 px plus the 3-sigma feather, exactly 0 beyond
    np.testing.assert_array_equal(mask > 0, _square_dilate(eyes, 8 + 15))
    assert (mask[eyes] > 0.9).all()  # the feather's ramp lies mostly outside the region
    # exactly 1 deep inside: 3 sigma or more inside the dilated region (eyes are too small)
    hair = labels == REGION_CODES["hair"]
    deep = ~_square_dilate(~_square_dilate(hair, 8), 15)
    hair_mask = fill_mask(labels, "hair")
    assert deep.any() and (hair_mask[deep] == 1.0).all()
    assert (hair_mask[~deep] < 1.0).all()


def test_skin_has_no_dilation_and_masks_cover_all_regions():
    labels = _toy_labels(224)
    masks = fill_masks(labels)
    assert list(masks) == list(REGIONS)
    skin = labels == REGION_CODES["skin"]
    assert dilation_radius("skin", 224) == 0
    np.testing.assert_array_equal(masks["skin"] > 0, _square_dilate(skin, 15))
    assert not (masks["brows"] > 0).any()  # no brows in the toy map: an empty mask


def test_scaling_rule_doubles_radii_at_448():
    assert dilation_radius("eyes", 448) == 2 * dilation_radius("eyes", 224) == 16
    assert dilation_radius("brows", 448) == 8 and dilation_radius("nose", 448) == 12
    assert feather_sigma(448) == pytest.approx(10.0) and feather_half_width(448) == 30
    assert box_size(224) == 15 and box_size(448) == 31 and box_size(128) == 9
    assert dilation_radius("eyes", 128) == 5  # 8 * 128 / 224 = 4.57
    labels = _toy_labels(448)
    for region in ("eyes", "hair"):
        region_mask = labels == REGION_CODES[region]
        support = fill_mask(labels, region) > 0
        np.testing.assert_array_equal(support, _square_dilate(region_mask, 16 + 30))


def test_blur_fill_changes_only_where_the_mask_is_positive():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)
    mask = fill_mask(_toy_labels(224), "eyes")
    out = blur_fill(image, mask)
    assert out.dtype == np.uint8 and out.shape == image.shape
    zero = mask == 0
    np.testing.assert_array_equal(out[zero], image[zero])
    full = mask == 1
    np.testing.assert_array_equal(out[full], cv2.blur(image, (15, 15))[full])
    assert (out[~zero] != image[~zero]).any()
    np.testing.assert_array_equal(blur_fill(image, np.zeros((224, 224))), image)
