"""`bench.py inference`: frames/s over a long video, per-frame network vs SSLTM streaming."""

from __future__ import annotations

from collections.abc import Callable

import torch
from hydra.utils import instantiate

import ssltm  # noqa: F401  (registers config resolvers)
from measure.timing import DEVICE, ROOT, compare_times, show
from ssltm.runs.config import compose_config


# --- inference -----------------------------------------------------------------------------------
def bench_inference(args) -> dict:
    from ssltm.inference.streaming import StreamingSegmenter

    frames = args.video_frames
    cfg = compose_config("train", [f"data.source.num_frames={frames}", "data.source.val_videos=1", *args.overrides],
                         ROOT / "outputs" / "bench")
    datamodule = instantiate(cfg.data)
    video = datamodule.source.videos("val")[0]
    images = [video.frame(t) for t in range(video.num_frames)]
    networks = {}
    for name in ("per_frame", "ssltm"):
        model_cfg = compose_config("train", [f"model={name}", *args.overrides], ROOT / "outputs" / "bench").model
        torch.manual_seed(0)
        networks[name] = instantiate(model_cfg)
    streams = {
        "per_frame": lambda: StreamingSegmenter(networks["per_frame"], datamodule.clip, datamodule.eval_transform, device=DEVICE),
        "ssltm (feature cache)": lambda: StreamingSegmenter(networks["ssltm"], datamodule.clip, datamodule.eval_transform,
                                                            device=DEVICE, cache_features=True),
        "ssltm (every clip recomputed)": lambda: StreamingSegmenter(networks["ssltm"], datamodule.clip,
                                                                    datamodule.eval_transform, device=DEVICE, cache_features=False),
    }

    def run(make) -> Callable[[], None]:
        def whole_video() -> None:
            stream = make()
            for image in images:
                stream.push(image)
        return whole_video

    times = compare_times({name: run(make) for name, make in streams.items()}, args.repeats)
    base = times["per_frame"]["median_s"]
    results = {name: {**t, "fps": frames / t["median_s"], "fps_ratio_to_per_frame": base / t["median_s"]}
               for name, t in times.items()}
    rows = [[name, f"{r['fps']:.2f}", f"{r['fps_ratio_to_per_frame']:.2f}x"] for name, r in results.items()]
    show(f"streaming inference, {frames} frames of {images[0].shape[1]}x{images[0].shape[0]}, "
         f"backbone {cfg.backbone.name} ({DEVICE.type})", ["model", "frames/s", "of per_frame"], rows)
    return {"frames": frames, "frame_size": list(images[0].shape[:2]), "backbone": cfg.backbone.name,
            "clip_frames": cfg.data.clip.num_frames, "results": results}
