"""Face parameters and geometry of one synthetic face, in a canonical 128 px frame.

``sample_face`` draws every parameter of one face (identity, colors, hair, pose, cues);
``face_geometry`` turns them into the 68 iBUG landmarks and the dense outlines the renderer
fills. All coordinates are ``(x, y)`` in pixels of the canonical 128 px frame, before pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saliency.data.synth.config import CUE_PARAMETERS, SynthConfig

# Light (tone 0) to dark (tone 1) skin, RGB.
SKIN_PALETTE = np.array(
    [[246, 214, 190], [228, 185, 150], [198, 142, 105], [150, 98, 66], [96, 60, 42]], np.float64
)
HAIR_COLORS = np.array(
    [[30, 26, 25], [62, 42, 32], [108, 74, 46], [196, 164, 108], [132, 62, 36], [150, 148, 146]],
    np.float64,
)
IRIS_COLORS = np.array(
    [[92, 58, 36], [52, 36, 28], [70, 110, 160], [82, 120, 78], [120, 120, 128], [130, 100, 54]],
    np.float64,
)
LIP_COLORS = np.array(
    [[186, 94, 96], [156, 74, 74], [126, 66, 60], [204, 118, 118], [146, 84, 98]], np.float64
)
HAIR_STYLES = ("straight", "wavy", "volume")
FRINGES = ("none", "bangs", "side")
CANON = 128.0
LONG_FRINGE_REACH = (0.7, 1.0)  # the long fringe's lower edge, face top (0) to eye line (1)
LONG_FRINGE_TIPS = 15  # strand tips along its lower edge
LONG_FRINGE_STREAM = 0xF41  # its own random stream: drawing it changes nothing else


@dataclass
class Face:
    """Every drawn parameter of one face; lengths in canonical 128 px units."""

    label: str
    group: str
    cue_class: str
    tone: float
    skin: np.ndarray
    hair_color: np.ndarray
    brow_color: np.ndarray
    iris_color: np.ndarray
    lip_color: np.ndarray
    sclera: np.ndarray
    background: tuple[np.ndarray, np.ndarray]
    clothes: np.ndarray
    face_width: float
    jaw_power: float
    top_y: float
    chin_y: float
    eye_y: float
    ipd: float
    eye_width: float
    eye_height: float
    brow_gap: float
    brow_thickness: float
    brow_arch: float
    nose_y: float
    nose_width: float
    mouth_y: float
    mouth_width: float
    lip_thickness: float
    hair_style: str
    fringe: str
    hair_length: float  # 0 short .. 1 long; never a cue (see config.CUE_PARAMETERS)
    hair_volume: float
    hairline: float
    stubble: float
    angle_deg: float
    scale: float
    shift: tuple[float, float]
    noise_sd: float
    light: tuple[float, float]  # (gradient strength, direction in radians)
    gain: float
    hair_angle: float  # strand direction, degrees from vertical (the hair cue)
    # a long fringe over the face (SynthConfig.fringe): its lower edge lies this fraction of
    # the way from the face's top to the eye line (0: none), with these tips (canonical px)
    long_fringe_reach: float = 0.0
    long_fringe_tips: tuple[float, ...] = ()


def _cue_value(region: str, strength: float, sign: float, rng: np.random.Generator) -> float:
    p = CUE_PARAMETERS[region]
    return float(p["base"]) + sign * strength * float(p["shift"]) + float(p["sd"]) * rng.normal()


def _pick(palette: np.ndarray, rng: np.random.Generator, jitter: float) -> np.ndarray:
    color = palette[rng.integers(len(palette))] * rng.uniform(1 - jitter, 1 + jitter)
    return np.clip(color + rng.normal(0, 6, 3), 18, 250)


def sample_face(
    cfg: SynthConfig, rng: np.random.Generator, label: str, group: str, cue_class: str
) -> Face:
    """Draw one face. Only the cue parameters depend on ``cue_class``; colors never do."""
    sign = 1.0 if cue_class == "male" else -1.0
    cues = cfg.cues
    lo, hi = cfg.groups[group]
    tone = float(rng.uniform(lo, hi))
    pos = tone * (len(SKIN_PALETTE) - 1)
    i = min(int(pos), len(SKIN_PALETTE) - 2)
    skin = SKIN_PALETTE[i] + (pos - i) * (SKIN_PALETTE[i + 1] - SKIN_PALETTE[i])
    bg_a = rng.uniform(40, 230, 3)
    eye_y = 57.0 + rng.uniform(-1.5, 1.5)
    nose_y = eye_y + 23.0 + rng.uniform(-1.5, 1.5)
    mouth_y = nose_y + 13.0 + rng.uniform(-1.0, 1.0)
    stubble = 0.0
    if cues.get("skin", 0.0) > 0 and sign > 0:
        stubble = cues["skin"] * rng.uniform(0.75, 1.0)
    return Face(
        label=label,
        group=group,
        cue_class=cue_class,
        tone=tone,
        skin=skin + rng.normal(0, 4, 3),
        hair_color=_pick(HAIR_COLORS, rng, 0.12),
        brow_color=np.clip(rng.uniform(35, 120) * np.array([1.0, 0.82, 0.7]), 18, 250),
        iris_color=_pick(IRIS_COLORS, rng, 0.15),
        lip_color=_pick(LIP_COLORS, rng, 0.1),
        sclera=np.clip(np.array([236, 232, 226]) + rng.normal(0, 6, 3), 180, 255),
        background=(bg_a, np.clip(bg_a + rng.normal(0, 40, 3), 20, 240)),
        clothes=rng.uniform(30, 220, 3),
        face_width=35.0 + rng.uniform(-3.0, 3.0),
        jaw_power=rng.uniform(2.0, 2.9),
        top_y=19.0 + rng.uniform(-2.0, 2.0),
        chin_y=mouth_y + 15.0 + rng.uniform(-2.0, 2.0),
        eye_y=eye_y,
        ipd=28.0 + rng.uniform(-2.0, 2.0),
        eye_width=13.0 + rng.uniform(-1.0, 1.0),
        eye_height=float(np.clip(_cue_value("eyes", cues.get("eyes", 0.0), sign, rng), 2.2, 9.0)),
        brow_gap=10.5 + rng.uniform(-1.0, 1.0),
        brow_thickness=float(
            np.clip(_cue_value("brows", cues.get("brows", 0.0), sign, rng), 1.6, 7.0)
        ),
        brow_arch=rng.uniform(0.5, 3.0),
        nose_y=nose_y,
        nose_width=float(np.clip(_cue_value("nose", cues.get("nose", 0.0), sign, rng), 9, 26)),
        mouth_y=mouth_y,
        mouth_width=24.0 + rng.uniform(-2.0, 2.0),
        lip_thickness=float(
            np.clip(_cue_value("mouth", cues.get("mouth", 0.0), sign, rng), 0.45, 1.6)
        ),
        hair_style=HAIR_STYLES[rng.integers(len(HAIR_STYLES))],
        fringe=FRINGES[rng.integers(len(FRINGES))],
        hair_length=rng.uniform(0.0, 1.0),
        hair_volume=rng.uniform(3.0, 9.0),
        hairline=rng.uniform(5.0, 10.0),
        stubble=stubble,
        angle_deg=rng.uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg),
        scale=rng.uniform(*cfg.scale_range),
        shift=(
            rng.uniform(-cfg.max_shift, cfg.max_shift) * CANON,
            rng.uniform(-cfg.max_shift, cfg.max_shift) * CANON,
        ),
        noise_sd=rng.uniform(*cfg.noise_sd),
        light=(rng.uniform(0, cfg.light_gradient), rng.uniform(0, 2 * np.pi)),
        gain=rng.uniform(0.85, 1.12),
        hair_angle=float(np.clip(_cue_value("hair", cues.get("hair", 0.0), sign, rng), -10, 100)),
    )


def with_long_fringe(face: Face, p: float, seed: int, index: int) -> Face:
    """``face`` with a long fringe with probability ``p`` (the cell's ``SynthConfig.fringe``).

    The draws come from their own stream, seeded by ``(seed, index, LONG_FRINGE_STREAM)``,
    and only when ``p > 0``: the face's other parameters, its pixels outside the fringe and
    every face of a cell without fringes are those of the same seed without the knob."""
    if p <= 0.0:
        return face
    rng = np.random.default_rng([seed, index, LONG_FRINGE_STREAM])
    if rng.random() >= p:
        return face
    face.long_fringe_reach = float(rng.uniform(*LONG_FRINGE_REACH))
    face.long_fringe_tips = tuple(float(v) for v in rng.uniform(-1.5, 1.5, LONG_FRINGE_TIPS))
    return face


@dataclass
class Geometry:
    """Canonical outlines ``[K, 2]`` and the 68 landmarks ``[68, 2]`` of one face."""

    landmarks: np.ndarray
    face: np.ndarray
    brows: tuple[np.ndarray, np.ndarray]
    eyes: tuple[np.ndarray, np.ndarray]
    nose: np.ndarray
    mouth: np.ndarray
    mouth_line: np.ndarray
    center: tuple[float, float]


def _jaw(f: Face, t: np.ndarray) -> np.ndarray:
    """Jaw curve from the left ear (t=-1) over the chin (t=0) to the right ear (t=1)."""
    phi = t * np.pi / 2
    e = 2.0 / f.jaw_power
    x = 64.0 + f.face_width * np.sign(np.sin(phi)) * np.abs(np.sin(phi)) ** e
    y = f.eye_y + (f.chin_y - f.eye_y) * np.abs(np.cos(phi)) ** e
    return np.stack([x, y], axis=1)


def _brow(f: Face, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Centre line (5 landmarks, outer to inner) and outline of one brow; side -1 is image-left."""
    ex = 64.0 + side * f.ipd / 2
    y0 = f.eye_y - f.brow_gap
    outer, inner = ex + side * 9.5, ex - side * 7.5
    u = np.linspace(0.0, 1.0, 25)
    x = outer + (inner - outer) * u
    y = y0 - f.brow_arch * np.sin(np.pi * np.clip(u * 1.25, 0, 1)) + 1.2 * (1 - u)
    half = f.brow_thickness / 2 * (0.7 + 0.3 * np.sin(np.pi * np.clip(0.15 + u * 0.85, 0, 1)))
    half = np.maximum(half, 0.8)
    line = np.stack([x, y], axis=1)
    outline = np.concatenate([np.stack([x, y - half], 1), np.stack([x, y + half], 1)[::-1]])
    idx = np.round(np.linspace(0, 24, 5)).astype(int)
    return line[idx], outline


def _eye(f: Face, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Six landmarks (iBUG order for that eye) and the almond outline of one eye."""
    ex, ey, hw, hh = 64.0 + side * f.ipd / 2, f.eye_y, f.eye_width / 2, f.eye_height / 2
    u = np.linspace(-1.0, 1.0, 21)
    upper = np.stack([ex + hw * u, ey - hh * (1 - u**2) ** 0.7 - 0.6 * (1 - u**2)], 1)
    lower = np.stack([ex + hw * u, ey + 0.8 * hh * (1 - u**2) ** 0.8], 1)
    outline = np.concatenate([upper, lower[::-1][1:-1]])
    k = [7, 13]  # u = -1/3, +1/3

    # iBUG order for either eye: left corner, two upper-lid points, right corner, two
    # lower-lid points from right to left (36-41 image-left eye, 42-47 image-right eye)
    pts = [upper[0], upper[k[0]], upper[k[1]], upper[20], lower[k[1]], lower[k[0]]]
    return np.array(pts), outline


def _nose(f: Face) -> tuple[np.ndarray, np.ndarray]:
    """Nine landmarks (27-35: bridge to tip, then the base left to right) and the outline."""
    top = f.eye_y - 1.0
    bridge = np.stack([np.full(4, 64.0), np.linspace(top, f.nose_y, 4)], 1)
    w = f.nose_width / 2
    by = f.nose_y + 3.0
    base = np.array(
        [
            [64 - 0.62 * w, by],
            [64 - 0.32 * w, by + 0.8],
            [64, by + 1.2],
            [64 + 0.32 * w, by + 0.8],
            [64 + 0.62 * w, by],
        ]
    )
    half = np.array(
        [
            [64.0, top - 2.0],
            [64 + 0.31 * w, top - 1.5],  # the bridge widens with the nose (2.6 px at base)
            [64 + 0.40 * w, f.nose_y - 9.0],
            [64 + 0.8 * w, f.nose_y - 1.5],
            [64 + w, f.nose_y + 1.5],
            [64 + 0.9 * w, by + 1.8],
            [64 + 0.45 * w, by + 2.6],
            [64.0, by + 3.0],
        ]
    )
    mirror = half[1:-1][::-1] * np.array([-1.0, 1.0]) + np.array([128.0, 0.0])
    return np.concatenate([bridge, base]), np.concatenate([half, mirror])


def _mouth(f: Face) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twenty landmarks (48-67), the outer lip outline and the inner line."""
    hw, my = f.mouth_width / 2, f.mouth_y
    ul, ll = 3.2 * f.lip_thickness, 4.2 * f.lip_thickness
    u = np.linspace(-1.0, 1.0, 25)
    bow = 1.0 - 0.35 * np.exp(-((u / 0.18) ** 2))  # cupid's bow dip
    upper = np.stack([64 + hw * u, my - ul * (1 - u**2) ** 0.6 * bow], 1)
    lower = np.stack([64 + hw * u, my + ll * (1 - u**2) ** 0.75], 1)
    inner_u = np.stack([64 + (hw - 2) * u, my - 0.35 * (1 - u**2)], 1)
    inner_l = np.stack([64 + (hw - 2) * u, my + 0.35 * (1 - u**2)], 1)
    o = [4, 8, 12, 16, 20]  # u = -2/3, -1/3, 0, 1/3, 2/3
    i = [6, 12, 18]
    pts = [upper[0], *upper[o], upper[24], *lower[o][::-1]]
    pts += [inner_u[0], *inner_u[i], inner_u[24], *inner_l[i][::-1]]
    outline = np.concatenate([upper, lower[::-1][1:-1]])
    return np.array(pts), outline, np.concatenate([inner_u, inner_l[::-1]])


def face_geometry(f: Face) -> Geometry:
    """Landmarks (iBUG 68 order) and outlines of a face, canonical frame, before pose."""
    t = np.linspace(-1.0, 1.0, 17)
    jaw_pts = _jaw(f, t)
    dense = _jaw(f, np.linspace(-1.0, 1.0, 61))
    a = np.linspace(0.0, np.pi, 31)[1:-1]
    forehead = np.stack(
        [64.0 - f.face_width * np.cos(a), f.eye_y - (f.eye_y - f.top_y) * np.sin(a)], 1
    )
    face = np.concatenate([dense, forehead[::-1]])
    brow_l, brow_l_out = _brow(f, -1)
    brow_r, brow_r_out = _brow(f, +1)
    eye_l, eye_l_out = _eye(f, -1)
    eye_r, eye_r_out = _eye(f, +1)
    nose_pts, nose_out = _nose(f)
    mouth_pts, mouth_out, mouth_line = _mouth(f)
    landmarks = np.concatenate([jaw_pts, brow_l, brow_r[::-1], nose_pts, eye_l, eye_r, mouth_pts])
    assert landmarks.shape == (68, 2)
    return Geometry(
        landmarks=landmarks,
        face=face,
        brows=(brow_l_out, brow_r_out),
        eyes=(eye_l_out, eye_r_out),
        nose=nose_out,
        mouth=mouth_out,
        mouth_line=mouth_line,
        center=(64.0, (f.top_y + f.chin_y) / 2),
    )
