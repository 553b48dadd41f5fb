"""Frames in and out of the suite outside a data set: a folder of images or a video file in, an mp4
out (PyAV, which carries its own FFmpeg). Frames are H W 3 uint8 RGB arrays, read one at a time so
that a long video never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from ssltm.data.image_files import natural_order, read_rgb
from ssltm.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}


class FrameReader:
    """The frames of `path` in temporal order: an image folder (sorted by file name) or a video file.

    `len()` is the frame count (for a video, as its header states; None when it does not say),
    `fps` the video's frame rate (None for a folder), iteration yields H W 3 uint8 frames.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DataError(f"input: no file or folder at {self.path}")
        self.fps: float | None = None
        self.files: list[Path] | None = None
        self.num_frames: int | None = None
        if self.path.is_dir():
            self.files = natural_order(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise DataError(
                    f"input: {self.path} holds no image files ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )
            stems: dict[str, Path] = {}
            for file in self.files:  # outputs are named by stem: two frames must not share one
                if file.stem in stems:
                    raise DataError(
                        f"input: {stems[file.stem]} and {file} have the same name without their "
                        "extension, so their predictions would overwrite each other; rename one"
                    )
                stems[file.stem] = file
            self.num_frames = len(self.files)
        elif self.path.suffix.lower() in VIDEO_SUFFIXES:
            with self._open() as container:
                stream = container.streams.video[0]
                self.fps = float(stream.average_rate) if stream.average_rate else None
                self.num_frames = stream.frames or None
        else:
            raise DataError(
                f"input: {self.path} is neither a folder of frames nor a video file "
                f"({', '.join(sorted(VIDEO_SUFFIXES))})"
            )

    def _open(self):
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as err:
            raise DataError(f"input: {self.path}: unreadable video ({err})") from None
        if not container.streams.video:
            container.close()
            raise DataError(f"input: {self.path} has no video stream")
        return container

    def names(self) -> Iterator[str]:
        """A file stem per frame: the image's own name, or the frame number of a video."""
        if self.files is not None:
            yield from (p.stem for p in self.files)
        else:
            t = 0
            while True:
                yield f"{t:06d}"
                t += 1

    def __len__(self) -> int:
        return self.num_frames or 0

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.files is not None:
            size = None
            for path in self.files:
                frame = read_rgb(path)
                if size is not None and frame.shape != size:
                    raise DataError(f"input: {path} is {frame.shape[:2]}, the frames before it {size[:2]}")
                size = frame.shape
                yield frame
            return
        with self._open() as container:
            try:
                for frame in container.decode(video=0):
                    yield frame.to_ndarray(format="rgb24")
            except av.error.FFmpegError as err:
                raise DataError(f"input: {self.path}: corrupt video data ({err})") from None


class Mp4Writer:
    """Writes H W 3 uint8 frames to an H.264 mp4 (frames padded to even sizes, as yuv420p needs).

    Use as a context manager; nothing is written until the first frame arrives.
    """

    def __init__(self, path: str | Path, fps: float = 10.0, crf: int = 20) -> None:
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.container = None
        self.stream = None

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)))
        if self.container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.container = av.open(str(self.path), mode="w")
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            self.stream = self.container.add_stream(codec, rate=round(self.fps))
            self.stream.width, self.stream.height = frame.shape[1], frame.shape[0]
            self.stream.pix_fmt = "yuv420p"
            if codec == "libx264":
                self.stream.options = {"crf": str(self.crf)}
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self.container.mux(packet)

    def close(self) -> None:
        if self.container is not None:
            for packet in self.stream.encode():  # flush the encoder
                self.container.mux(packet)
            self.container.close()
            self.container = None

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
