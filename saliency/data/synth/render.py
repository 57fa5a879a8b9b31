"""Draw one synthetic face: RGB image, exact region label map, 68 landmarks.

Layers are composited back to front with anti-aliased coverage; a pixel's label is the
region of the topmost layer covering at least half of it, so the label map is exclusive
and agrees with what is drawn. Torch-free on purpose: this runs in worker processes.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from saliency.data.regions import BACKGROUND, REGION_CODES
from saliency.data.synth.face import CANON, Face, Geometry, face_geometry

SUBPIXEL_BITS = 4
HAIR_CONTRAST = 12.0  # strand texture amplitude, 0-255 units


def pose_matrix(face: Face, size: int) -> np.ndarray:
    """Affine ``[2, 3]`` from canonical 128 px coordinates to image pixel coordinates.

    Pixel centres sit at integer coordinates (OpenCV's convention) at both resolutions.
    """
    theta = np.deg2rad(face.angle_deg)
    c = np.array([64.0, 66.0])
    rot = face.scale * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    k = size / CANON
    lin = k * rot
    offset = k * (c - rot @ c + np.asarray(face.shift) + 0.5) - 0.5
    return np.concatenate([lin, offset[:, None]], axis=1)


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ m[:, :2].T + m[:, 2]


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx, yy


class Canvas:
    """An RGB float image and its label map, composited layer by layer."""

    def __init__(self, size: int, m: np.ndarray):
        self.size = size
        self.m = m
        self.image = np.zeros((size, size, 3), np.float32)
        self.labels = np.zeros((size, size), np.uint8)
        xx, yy = _grid(size)
        inv = cv2.invertAffineTransform(m)
        self.u = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]  # canonical x of each pixel
        self.v = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]  # canonical y of each pixel

    def coverage(self, outline: np.ndarray) -> np.ndarray:
        """Anti-aliased coverage ``float32 [S, S]`` in [0, 1] of a canonical outline."""
        alpha = np.zeros((self.size, self.size), np.uint8)
        pts = np.round(_apply(self.m, outline) * (1 << SUBPIXEL_BITS)).astype(np.int32)
        cv2.fillPoly(alpha, [pts], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
        return alpha.astype(np.float32) / 255.0

    def line(self, pts: np.ndarray, width: float) -> np.ndarray:
        """Coverage of an anti-aliased polyline through canonical points."""
        alpha = np.zeros((self.size, self.size), np.uint8)
        p = np.round(_apply(self.m, pts) * (1 << SUBPIXEL_BITS)).astype(np.int32)
        thick = max(1, int(round(width * self.size / CANON)))
        cv2.polylines(alpha, [p], False, 255, thick, cv2.LINE_AA, SUBPIXEL_BITS)
        return alpha.astype(np.float32) / 255.0

    def paint(self, alpha: np.ndarray, color: np.ndarray, code: int | None = None) -> None:
        """Blend ``color`` (RGB or ``[S, S, 3]``) through ``alpha``; set ``code`` where >= 0.5.

        Only the bounding box of the non-zero coverage is touched.
        """
        rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
        if rows.size == 0:
            return
        box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        a = alpha[box]
        color = np.asarray(color, np.float32)
        if color.ndim == 3:
            color = color[box]
        region = self.image[box]
        region += (color - region) * a[..., None]
        if code is not None:
            self.labels[box][a >= 0.5] = code


def _hair_outline(f: Face) -> np.ndarray:
    vol = f.hair_volume + (4.0 if f.hair_style == "volume" else 0.0)
    rx, ry = f.face_width + vol, (f.eye_y - f.top_y) + vol + 2.0
    a = np.linspace(0.0, np.pi, 41)
    top = np.stack([64.0 - rx * np.cos(a), f.eye_y - ry * np.sin(a)], 1)
    y_bot = f.eye_y + 4.0 + f.hair_length * (150.0 - f.eye_y)
    ys = np.linspace(f.eye_y, y_bot, 16)[1:]
    flare = 3.0 + 12.0 * f.hair_length * (1.5 if f.hair_style == "volume" else 1.0)
    wave = 1.5 * np.sin((ys - f.eye_y) / 6.0) if f.hair_style == "wavy" else 0.0
    side = rx + flare * (ys - f.eye_y) / max(y_bot - f.eye_y, 1.0) + wave
    right = np.stack([64.0 + side, ys], 1)
    left = np.stack([64.0 - side, ys], 1)[::-1]
    return np.concatenate([left, top, right])


def _cap(c: Canvas, f: Face, g: Geometry) -> np.ndarray:
    """Coverage of hair over the top of the forehead, above a hairline dipping at the temples."""
    y_h = f.top_y + f.hairline
    x = np.linspace(-40.0, 168.0, 41)
    hairline = np.stack([x, y_h + 7.0 * np.clip(np.abs(x - 64.0) / f.face_width, 0, 1.3) ** 4], 1)
    above = np.concatenate([hairline, [[168.0, -40.0], [-40.0, -40.0]]])
    return np.minimum(c.coverage(above), c.coverage(_head(g)))


def _head(g: Geometry) -> np.ndarray:
    """The face outline grown by 4%: hair drawn over the face stays inside it."""
    return (g.face - g.center) * 1.04 + g.center


def _fringe_outline(f: Face, rng: np.random.Generator) -> np.ndarray | None:
    if f.fringe == "none":
        return None
    # the fringe stops above the thickest possible brow: its edge must not depend on the
    # brows' cue parameter, or hair and skin outlines would carry brow information
    lowest = f.eye_y - f.brow_gap - f.brow_arch - 3.5 - 4.0
    x = np.linspace(64.0 - f.face_width - 2, 64.0 + f.face_width + 2, 15)
    if f.fringe == "bangs":
        bottom = np.minimum(lowest, lowest - 1.5 + rng.uniform(-1.5, 1.5, x.size))
    else:  # side-swept: low on one side, rising to the hairline on the other
        ramp = (x - x[0]) / (x[-1] - x[0])
        if rng.random() < 0.5:
            ramp = ramp[::-1]
        bottom = lowest - 14.0 * ramp**1.5
    top = np.stack([x[::-1], np.full(x.size, f.top_y - 10)], 1)
    return np.concatenate([np.stack([x, bottom], 1), top])


def _long_fringe_outline(f: Face) -> np.ndarray | None:
    """Bangs from above the head down to ``long_fringe_reach`` of the way from the face's top
    to the eye line, a little shorter towards the temples, with uneven strand tips."""
    if f.long_fringe_reach <= 0.0:
        return None
    tips = np.asarray(f.long_fringe_tips, np.float64)
    x = np.linspace(64.0 - f.face_width - 2, 64.0 + f.face_width + 2, tips.size)
    edge = f.top_y + f.long_fringe_reach * (f.eye_y - f.top_y)
    bottom = edge - 3.0 * ((x - 64.0) / f.face_width) ** 2 + tips
    top = np.stack([x[::-1], np.full(x.size, f.top_y - 10)], 1)
    return np.concatenate([np.stack([x, bottom], 1), top])


def _textured(
    c: Canvas, color: np.ndarray, rng: np.random.Generator, period: float, angle: float
) -> np.ndarray:
    """Strands running ``angle`` degrees from vertical: a sine of ``period`` (canonical px)
    across them plus grain, ``HAIR_CONTRAST`` levels added to ``color`` in every channel (the
    hair's mean color does not change). Returns float ``[S, S, 3]``."""
    phase, across = rng.uniform(0, 2 * np.pi), np.deg2rad(angle)
    wave = np.sin(2 * np.pi * (c.u * np.cos(across) + c.v * np.sin(across)) / period + phase)
    grain = rng.normal(0.0, 0.5, wave.shape)
    return color[None, None, :] + (HAIR_CONTRAST * (wave + grain))[..., None]


def render_face(
    f: Face, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render a face at ``size`` px.

    Returns:
        image: RGB ``uint8 [S, S, 3]``.
        labels: region codes ``uint8 [S, S]`` (0 background, 1 skin ... 6 hair).
        landmarks: ``float32 [68, 2]`` (x, y) in image pixels, iBUG order.
    """
    g: Geometry = face_geometry(f)
    m = pose_matrix(f, size)
    c = Canvas(size, m)
    code = REGION_CODES
    # background: vertical gradient between two colors
    t = np.clip(c.v / CANON, 0, 1)[..., None]
    c.image[:] = f.background[0] * (1 - t) + f.background[1] * t
    shoulders = np.array(
        [
            [-20, 160],
            [-20, f.chin_y + 26],
            [28, f.chin_y + 13],
            [100, f.chin_y + 13],
            [148, f.chin_y + 26],
            [148, 160],
        ],
        np.float64,
    )
    c.paint(c.coverage(shoulders), f.clothes)
    hair = _textured(c, f.hair_color, rng, rng.uniform(5.0, 7.0), f.hair_angle)
    c.paint(c.coverage(_hair_outline(f)), hair, code["hair"])
    neck_w = 0.5 * f.face_width
    neck = np.array(
        [
            [64 - neck_w, f.mouth_y],
            [64 + neck_w, f.mouth_y],
            [64 + neck_w + 2, 170],
            [64 - neck_w - 2, 170],
        ]
    )
    c.paint(c.coverage(neck), f.skin * 0.8, BACKGROUND)  # neck: 0, also under long hair
    # Skin is flat apart from the global light: any fixed shading pattern would differ from
    # the skin's mean color next to the features and so reveal their outlines in skin pixels.
    c.paint(c.coverage(g.face), f.skin, code["skin"])
    c.paint(_cap(c, f, g), hair, code["hair"])
    brow = f.brow_color[None, None, :] * (1 + 0.08 * rng.standard_normal((size, size, 1)))
    for outline in g.brows:
        c.paint(c.coverage(outline), brow, code["brows"])
    _eyes(c, f, g, rng)
    _nose(c, f, g)
    _mouth(c, f, g)
    fringe = _fringe_outline(f, rng)
    if fringe is not None:
        c.paint(np.minimum(c.coverage(fringe), c.coverage(_head(g))), hair, code["hair"])
    long_fringe = _long_fringe_outline(f)  # draws nothing from rng: other pixels unchanged
    if long_fringe is not None:
        c.paint(np.minimum(c.coverage(long_fringe), c.coverage(_head(g))), hair, code["hair"])
    if f.stubble > 0:
        _stubble(c, f, rng)
    _light_and_noise(c, f, rng)
    image = np.clip(np.rint(c.image), 0, 255).astype(np.uint8)
    return image, c.labels, _apply(m, g.landmarks).astype(np.float32)


def _eyes(c: Canvas, f: Face, g: Geometry, rng: np.random.Generator) -> None:
    gaze = rng.uniform(-0.8, 0.8, 2)
    for side, outline in zip((-1, 1), g.eyes, strict=True):
        eye = c.coverage(outline)
        c.paint(eye, f.sclera, REGION_CODES["eyes"])
        center = np.array([64.0 + side * f.ipd / 2 + gaze[0], f.eye_y + gaze[1] * 0.5])
        a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = np.stack([np.cos(a), np.sin(a)], 1)
        r_iris = 0.29 * f.eye_width
        c.paint(np.minimum(c.coverage(center + r_iris * ring), eye), f.iris_color)
        c.paint(
            np.minimum(c.coverage(center + 0.45 * r_iris * ring), eye), np.array([18.0, 16, 16])
        )
        glint = center + np.array([0.35, -0.35]) * r_iris
        c.paint(np.minimum(c.coverage(glint + 0.55 * ring), eye), np.array([250.0, 250, 250]))
        upper = outline[: len(outline) // 2 + 1] + np.array([0.0, 0.45])
        c.paint(np.minimum(c.line(upper, 1.0), eye) * 0.85, np.array([25.0, 20, 20]))


def _nose(c: Canvas, f: Face, g: Geometry) -> None:
    nose = c.coverage(g.nose)
    c.paint(nose, f.skin * 0.93, REGION_CODES["nose"])
    w, by = f.nose_width / 2, f.nose_y + 3.0
    a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    for side in (-1, 1):
        nostril = np.stack(
            [64 + side * 0.36 * w + 0.16 * w * np.cos(a), by + 0.2 + 1.1 * np.sin(a)], 1
        )
        c.paint(np.minimum(c.coverage(nostril), nose), f.skin * 0.35)
        ala = np.array(
            [
                [64 + side * 0.75 * w, f.nose_y - 2.5],
                [64 + side * 0.95 * w, f.nose_y + 1.5],
                [64 + side * 0.7 * w, by + 1.4],
            ]
        )
        c.paint(np.minimum(c.line(ala, 1.0), nose) * 0.6, f.skin * 0.6)
        # the bridge's side shadow, so the nose's width shows along its whole length
        side_shadow = np.array(
            [
                [64 + side * 0.26 * w, f.eye_y + 1.0],
                [64 + side * 0.34 * w, f.nose_y - 9.0],
                [64 + side * 0.68 * w, f.nose_y - 2.5],
            ]
        )
        c.paint(np.minimum(c.line(side_shadow, 0.9), nose) * 0.45, f.skin * 0.6)
    ridge = np.array([[65.5, f.eye_y + 2.0], [65.8, f.nose_y - 3.0]])
    c.paint(np.minimum(c.line(ridge, 1.2), nose) * 0.12, np.array([255.0, 250, 245]))


def _mouth(c: Canvas, f: Face, g: Geometry) -> None:
    lips = c.coverage(g.mouth)
    c.paint(lips, f.lip_color, REGION_CODES["mouth"])
    upper = lips * (c.v < f.mouth_y)
    c.paint(upper * 0.5, f.lip_color * 0.7)
    inner = g.mouth_line[: len(g.mouth_line) // 2]
    c.paint(np.minimum(c.line(inner, 1.0), lips) * 0.9, f.lip_color * 0.35)


def _stubble(c: Canvas, f: Face, rng: np.random.Generator) -> None:
    """Skin cue: beard shadow (texture and shading) on the lower face's skin pixels only."""
    skin = c.labels == REGION_CODES["skin"]
    ramp = np.clip((c.v - (f.nose_y + 1.0)) / 5.0, 0.0, 1.0)
    speckle = rng.uniform(0.4, 1.0, skin.shape)
    dark = f.stubble * 0.38 * ramp * speckle * skin
    c.image *= (1.0 - dark)[..., None]


def _light_and_noise(c: Canvas, f: Face, rng: np.random.Generator) -> None:
    strength, direction = f.light
    proj = ((c.u - 64.0) * np.cos(direction) + (c.v - 64.0) * np.sin(direction)) / 64.0
    c.image *= (f.gain * (1.0 + strength * proj))[..., None]
    c.image += rng.normal(0.0, f.noise_sd, c.image.shape).astype(np.float32)
