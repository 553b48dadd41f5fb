"""Built-in synthetic video set: textured objects moving over a moving background.

Generated on the fly and deterministic by seed, so the whole pipeline runs with no data on disk.
It is built so that temporal modelling matters (see `docs/synthetic.md` for the full description):

- `disc` and `square` are recognisable in any single frame (by shape).
- `drift_left` and `drift_right` are the same textured diamond: the only difference is the sign of
  the horizontal velocity. Any single frame of one is exactly a frame of the other (play the video
  backwards and swap the two labels: `reverse_time`), so only adjacent frames tell them apart.
- `tagged_red` and `tagged_blue` are the same textured triangle carrying a coloured tag that is
  visible only in the first `cue_frames` frames of the video. Later frames are identical for both,
  so only a distant reference frame (near the start of the video) tells them apart.

Positions and velocities are integers and rendering is a pure function of (spec, t), which makes
the two statements above exact (the tests prove them pixel for pixel).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ssltm.data.info import DatasetInfo
from ssltm.data.video import Video, VideoSource
from ssltm.errors import ConfigError

SYNTHETIC_INFO = DatasetInfo(
    name="synthetic",
    classes=(
        "background",
        "disc",
        "square",
        "drift_left",
        "drift_right",
        "tagged_red",
        "tagged_blue",
    ),
    palette=(
        (40, 40, 40),
        (230, 25, 75),
        (60, 180, 75),
        (255, 225, 25),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
    ),
)

BACKGROUND, DISC, SQUARE, DRIFT_LEFT, DRIFT_RIGHT, TAGGED_RED, TAGGED_BLUE = range(7)
#: classes that no single frame can tell apart, as (a, b) pairs
TEMPORAL_PAIRS = ((DRIFT_LEFT, DRIFT_RIGHT), (TAGGED_RED, TAGGED_BLUE))
SHAPE_OF_CLASS = {
    DISC: "disc",
    SQUARE: "square",
    DRIFT_LEFT: "diamond",
    DRIFT_RIGHT: "diamond",
    TAGGED_RED: "triangle",
    TAGGED_BLUE: "triangle",
}
BACKGROUND_TILE = 128  # the background texture is periodic with this period (pixels)
TAG_COLOUR = {TAGGED_RED: (255, 0, 0), TAGGED_BLUE: (0, 0, 255)}


@dataclass(frozen=True)
class ObjectSpec:
    """One object. Its centre at frame t is (y0 + vy * t, x0 + vx * t), integers throughout."""

    cls: int
    radius: int
    y0: int
    x0: int
    vy: int
    vx: int
    colour: tuple[int, int, int]
    texture_seed: int
    visible: tuple[int, int] | None = None  # frames [start, end) in which it is drawn; None: all


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render any frame of one video (objects are drawn in order)."""

    height: int
    width: int
    num_frames: int
    cue_frames: int
    background_seed: int
    background_tint: tuple[int, int, int]
    background_offset: tuple[int, int]  # (oy, ox) of the periodic texture at frame 0
    background_velocity: tuple[int, int]  # (vy, vx), pixels per frame
    objects: tuple[ObjectSpec, ...]


@dataclass(frozen=True)
class SyntheticConfig:
    height: int = 96
    width: int = 128
    num_frames: int = 30
    cue_frames: int = 3  # frames (from the start) in which the tags of the tagged_* classes show
    min_objects: int = 3
    max_objects: int = 5
    min_radius: int = 9
    max_radius: int = 14
    max_speed: int = 2  # pixels per frame
    # share of the objects (tagged ones excepted) that appear or vanish during the video: drawn
    # only over [switch, n) or [0, switch), switch uniform in the middle half. A reference frame
    # can then hold a class that its query frame lacks: the "noisy" frames of supp. Fig. 4b.
    transient: float = 0.0


def _allowed_start(rng: np.random.Generator, size: int, radius: int, v: int, n: int) -> int:
    """A start coordinate that keeps the object fully inside [0, size) for all n frames."""
    lo = radius - min(0, v) * (n - 1)
    hi = size - 1 - radius - max(0, v) * (n - 1)
    if hi < lo:
        raise ConfigError(
            f"synthetic data: a {2 * radius + 1}px object moving {abs(v)}px/frame for {n} frames "
            f"does not fit in {size}px; lower data.source.num_frames or max_speed"
        )
    return int(rng.integers(lo, hi + 1))


def _max_speed_that_fits(size: int, radius: int, n: int, max_speed: int) -> int:
    free = size - 1 - 2 * radius
    return max(0, min(max_speed, free // max(n - 1, 1)))


def sample_video_spec(rng: np.random.Generator, cfg: SyntheticConfig) -> VideoSpec:
    """Draw one video. The distribution is symmetric under `reverse_time` (tests rely on it)."""
    n = cfg.num_frames
    objects = []
    for _ in range(int(rng.integers(cfg.min_objects, cfg.max_objects + 1))):
        cls = int(rng.integers(1, len(SYNTHETIC_INFO.classes)))
        radius = int(rng.integers(cfg.min_radius, cfg.max_radius + 1))
        sx = _max_speed_that_fits(cfg.width, radius, n, cfg.max_speed)
        sy = _max_speed_that_fits(cfg.height, radius, n, 1)
        if cls in (DRIFT_LEFT, DRIFT_RIGHT):
            if sx < 1:
                raise ConfigError(
                    f"synthetic data: width {cfg.width} leaves no room for drifting objects over "
                    f"{n} frames; raise data.source.width or lower data.source.num_frames"
                )
            speed = int(rng.integers(1, sx + 1))
            vx = -speed if cls == DRIFT_LEFT else speed
        else:
            vx = int(rng.integers(-sx, sx + 1))
        vy = int(rng.integers(-sy, sy + 1))
        objects.append(
            ObjectSpec(
                cls=cls,
                radius=radius,
                y0=_allowed_start(rng, cfg.height, radius, vy, n),
                x0=_allowed_start(rng, cfg.width, radius, vx, n),
                vy=vy,
                vx=vx,
                colour=tuple(int(c) for c in rng.integers(50, 206, size=3)),
                texture_seed=int(rng.integers(2**31)),
            )
        )
    spec = VideoSpec(
        height=cfg.height,
        width=cfg.width,
        num_frames=n,
        cue_frames=cfg.cue_frames,
        background_seed=int(rng.integers(2**31)),
        background_tint=tuple(int(c) for c in rng.integers(60, 196, size=3)),
        background_offset=(int(rng.integers(BACKGROUND_TILE)), int(rng.integers(BACKGROUND_TILE))),
        background_velocity=(int(rng.integers(-1, 2)), int(rng.integers(-1, 2))),
        objects=tuple(objects),
    )
    if cfg.transient > 0:  # drawn last, so that transient=0 leaves every other draw as it was
        spec = dataclasses.replace(spec, objects=tuple(_transient(o, rng, cfg.transient, n) for o in objects))
    return spec


def _transient(obj: ObjectSpec, rng: np.random.Generator, share: float, n: int) -> ObjectSpec:
    """With probability `share`, the object appears or vanishes (equally likely, so the
    distribution stays symmetric under `reverse_time`) at a frame in the middle half."""
    transient, appears, switch = rng.random() < share, rng.random() < 0.5, int(rng.integers(n // 4, n - n // 4))
    if not transient or obj.cls in TAG_COLOUR:  # a tagged object must show its tag at the start
        return obj
    return dataclasses.replace(obj, visible=(switch, n) if appears else (0, switch))


def reverse_time(spec: VideoSpec) -> VideoSpec:
    """The same video played backwards, with drift_left and drift_right swapped.

    Frame t of the result equals frame (num_frames - 1 - t) of `spec` pixel for pixel (for videos
    without tagged objects, whose tags would move to the end). With `sample_video_spec` symmetric
    under this map, it proves the drift classes cannot be told apart in a single frame.
    """
    last = spec.num_frames - 1
    swap = {DRIFT_LEFT: DRIFT_RIGHT, DRIFT_RIGHT: DRIFT_LEFT}
    objects = tuple(
        dataclasses.replace(
            o,
            cls=swap.get(o.cls, o.cls),
            y0=o.y0 + o.vy * last,
            x0=o.x0 + o.vx * last,
            vy=-o.vy,
            vx=-o.vx,
            visible=None if o.visible is None else (spec.num_frames - o.visible[1], spec.num_frames - o.visible[0]),
        )
        for o in spec.objects
    )
    (oy, ox), (vy, vx) = spec.background_offset, spec.background_velocity
    return dataclasses.replace(
        spec,
        objects=objects,
        background_offset=(oy + vy * last, ox + vx * last),
        background_velocity=(-vy, -vx),
    )


def _smooth_noise(rng: np.random.Generator, size: int, cutoff: float) -> np.ndarray:
    """Periodic low-pass noise in [-1, 1], shape (size, size): white noise filtered in Fourier space."""
    freq = np.fft.fftfreq(size)
    radius = np.sqrt(freq[:, None] ** 2 + freq[None, :] ** 2)
    spectrum = np.fft.fft2(rng.standard_normal((size, size))) * np.exp(-((radius / cutoff) ** 2))
    noise = np.real(np.fft.ifft2(spectrum))
    return noise / (np.abs(noise).max() + 1e-8)


@lru_cache(maxsize=256)
def _background_texture(seed: int, tint: tuple[int, int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = _smooth_noise(rng, BACKGROUND_TILE, cutoff=0.05)  # tile tile
    stripes = _smooth_noise(rng, BACKGROUND_TILE, cutoff=0.15)
    tex = np.asarray(tint, np.float32) + 45.0 * noise[..., None] + 15.0 * stripes[..., None]
    return tex.astype(np.float32)  # tile tile 3


@lru_cache(maxsize=1024)
def _object_sprite(obj: ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
    """The object's textured appearance and shape mask, both centred, side 2r+1."""
    r = obj.radius
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    shape = SHAPE_OF_CLASS[obj.cls]
    if shape == "disc":
        mask = yy**2 + xx**2 <= r**2
    elif shape == "square":
        mask = np.maximum(np.abs(yy), np.abs(xx)) <= int(0.8 * r)
    elif shape == "diamond":
        mask = np.abs(yy) + np.abs(xx) <= r
    elif shape == "triangle":
        mask = (yy <= int(0.7 * r)) & (2 * np.abs(xx) <= yy + r)
    else:  # pragma: no cover - SHAPE_OF_CLASS is exhaustive
        raise KeyError(shape)
    rng = np.random.default_rng(obj.texture_seed)
    grain = rng.uniform(-25.0, 25.0, size=(2 * r + 1, 2 * r + 1, 1))
    sprite = np.asarray(obj.colour, np.float32) + grain.astype(np.float32)  # s s 3
    return sprite, mask


def _tag_mask(radius: int) -> np.ndarray:
    """The tag: a small square in the sprite's lower middle (inside the triangle)."""
    r = radius
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    half = max(2, r // 4)
    return (np.abs(xx) <= half) & (np.abs(yy - r // 3) <= half)


def render_frame(spec: VideoSpec, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame t of the video: an image (H W 3, uint8) and its label map (H W, uint8)."""
    if not 0 <= t < spec.num_frames:
        raise IndexError(f"frame {t} outside a video of {spec.num_frames} frames")
    h, w = spec.height, spec.width
    (oy, ox), (vy, vx) = spec.background_offset, spec.background_velocity
    tex = _background_texture(spec.background_seed, spec.background_tint)
    rows = (np.arange(h) + oy + vy * t) % BACKGROUND_TILE
    cols = (np.arange(w) + ox + vx * t) % BACKGROUND_TILE
    image = tex[rows[:, None], cols[None, :]].copy()  # H W 3
    label = np.full((h, w), BACKGROUND, np.uint8)
    for obj in spec.objects:
        if obj.visible is not None and not obj.visible[0] <= t < obj.visible[1]:
            continue
        sprite, mask = _object_sprite(obj)
        if obj.cls in TAG_COLOUR and t < spec.cue_frames:
            sprite = sprite.copy()
            sprite[_tag_mask(obj.radius)] = TAG_COLOUR[obj.cls]
        cy, cx, r = obj.y0 + obj.vy * t, obj.x0 + obj.vx * t, obj.radius
        window = (slice(cy - r, cy + r + 1), slice(cx - r, cx + r + 1))
        image[window][mask] = sprite[mask]
        label[window][mask] = obj.cls
    return np.clip(image, 0, 255).astype(np.uint8), label


def video_spec(seed: int, split: str, index: int, cfg: SyntheticConfig) -> VideoSpec:
    """The spec of video `index` of `split`: a pure function of (seed, split, index, cfg)."""
    split_id = {"train": 0, "val": 1, "test": 2}[split]
    return sample_video_spec(np.random.default_rng([seed, split_id, index]), cfg)


class SyntheticVideo(Video):
    """A synthetic video: every frame is rendered on demand and has ground truth."""

    def __init__(self, video_id: str, spec: VideoSpec) -> None:
        self.video_id = video_id
        self.spec = spec
        self.num_frames = spec.num_frames
        self.annotated = list(range(spec.num_frames))

    def frame(self, t: int) -> np.ndarray:
        return render_frame(self.spec, t)[0]

    def label(self, t: int) -> np.ndarray:
        return render_frame(self.spec, t)[1]


class SyntheticSource(VideoSource):
    """The synthetic data set: `train_videos`, `val_videos` and `test_videos` videos per split.

    Args:
        seed: the data set's seed; the same seed gives the same videos, frame for frame.
        train_videos, val_videos, test_videos: videos per split.
        height, width, num_frames, cue_frames, ...: see `SyntheticConfig`.
    """

    info = SYNTHETIC_INFO

    def __init__(
        self,
        seed: int = 0,
        train_videos: int = 256,
        val_videos: int = 8,
        test_videos: int = 8,
        **config: int,
    ) -> None:
        self.seed = seed
        self.counts = {"train": train_videos, "val": val_videos, "test": test_videos}
        self.config = SyntheticConfig(**config)

    def videos(self, split: str) -> list[Video]:
        if split not in self.counts:
            raise ValueError(f"synthetic data has splits {sorted(self.counts)}, not {split!r}")
        return [
            SyntheticVideo(f"{split}_{i:04d}", video_spec(self.seed, split, i, self.config))
            for i in range(self.counts[split])
        ]
