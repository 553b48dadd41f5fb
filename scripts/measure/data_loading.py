"""`bench.py data`: samples/s of the data modules' training loaders."""

from __future__ import annotations

import time

from hydra.utils import instantiate

import ssltm  # noqa: F401  (registers config resolvers)
from measure.timing import ROOT, show
from ssltm.runs.config import compose_config


# --- data --------------------------------------------------------------------------------------
def data_configs() -> dict[str, list[str]]:
    configs = {"synthetic": ["data=synthetic"]}
    camvid = ROOT.parent / "shared" / "camvid"
    if camvid.is_dir():
        configs["camvid"] = ["data=camvid", f"data.root={camvid}"]
    return configs


def bench_data(args) -> dict:
    results = {}
    for name, overrides in data_configs().items():
        cfg = compose_config("train", [*overrides, "method=mean_teacher", *args.overrides], ROOT / "outputs" / "bench")
        datamodule = instantiate(cfg.data)
        datamodule.setup("fit")
        loader = datamodule.train_dataloader()
        batches = args.data_batches
        iterator = iter(loader)
        next(iterator)  # workers started, first batch (warm-up)
        start = time.perf_counter()
        count = 0
        for _ in range(batches):
            batch = next(iterator)
            batch = batch[0] if isinstance(batch, tuple) else batch
            count += sum(part["frames"].shape[0] for part in batch.values())
        seconds = time.perf_counter() - start
        results[name] = {"num_workers": cfg.data.num_workers, "batches": batches, "samples": count,
                         "samples_per_s": count / seconds, "frame_size": list(cfg.data.train_transform.crop_size),
                         "clip_frames": cfg.data.clip.num_frames}
        del iterator, loader
    rows = [[name, r["num_workers"], f"{r['samples_per_s']:.1f}", r["frame_size"]] for name, r in results.items()]
    show("training loaders (labelled + unlabelled clips)", ["data", "workers", "clips/s", "crop"], rows)
    return {"results": results}
