#!/usr/bin/env bash
# The suite's GPU checks in one go, for a session that is lent a GPU for a few minutes:
#   1. benchmarks on cuda (scripts/bench.py stt, train_step in bf16, roofline, inference),
#      alone on the machine, so that their timings mean something -> benchmarks/cuda/
#   2. the GPU training paths for a few steps each (bf16-mixed, channels_last, torch.compile, SDPA,
#      every semi-supervised method), which kernel SDPA picks for STT, and a CamVid run at full
#      resolution (360x480) -> paths/, camvid_full/
#   3. experiment=study_camvid (9 runs side by side until a deadline) -> study_camvid/
#   4. the real-video bench's headline pair at full resolution (experiment=camvid_bench at 360x480,
#      SSLTM vs per-frame, supervised, seeds 1-3, side by side) -> camvid_bench_full/
#
#   DATA=<folder with camvid_180x240/ and camvid_full/> BUDGET=<seconds> bash scripts/device_check.sh <out folder>
#
# PARTS (default "bench study paths camvid_full") picks parts; STUDY_JOBS ("model:method:seed ...",
# default the 9 of the study) and PATHS (names below, default all) pick jobs within them.
#
# Run from the repository root with the package importable (PYTHONPATH=src). Everything lands in
# <out folder>; each part has its own time limit, so a slow part cannot starve the ones after it,
# and a part that fails leaves its log and lets the others run.
set -uo pipefail
OUT=${1:?usage: bash scripts/device_check.sh <out folder>}
DATA=${DATA:-.device}
BUDGET=${BUDGET:-570}
PY=${PY:-python3}
PARTS=${PARTS:-bench study paths camvid_full bench_full}
STUDY_JOBS=${STUDY_JOBS:-$(for s in 1 2 3; do echo ssltm_per_frame:supervised:$s ssltm:supervised:$s ssltm:mean_teacher:$s; done)}
PATHS=${PATHS:-mean_teacher_bf16 mean_teacher_compile fixmatch_bf16 unimatch_bf16 unimatch_encoder_fp32 per_frame_bf16}
has() { [[ " $PARTS " == *" $1 "* ]]; }
START=$(date +%s)
mkdir -p "$OUT"
elapsed() { echo $(( $(date +%s) - START )); }
left() {  # seconds to the deadline, at most $1
  local n=$(( DEADLINE - $(date +%s) )); echo $(( n < $1 ? n : $1 ))
}
log() { echo "[$(elapsed) s] $*" | tee -a "$OUT/device_check.log"; }
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 HYDRA_FULL_ERROR=1

log "machine"
{ nvidia-smi; $PY -c "import torch, pytorch_lightning, timm, hydra; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', pytorch_lightning.__version__, 'timm', timm.__version__, 'hydra', hydra.__version__); print(torch.cuda.get_device_name())"; } > "$OUT/env.txt" 2>&1

# --- 1. benchmarks, alone on the machine ---------------------------------------------------------
if has bench; then
log "benchmarks"
B=$OUT/benchmarks/cuda
mkdir -p "$B"
bench() { timeout "$1" $PY scripts/bench.py "${@:2}" --out "$B" >> "$OUT/bench.log" 2>&1 || log "bench ${*:2} failed or timed out (bench.log)"; }
bench 40 stt --repeats 10
bench 75 train_step --repeats 10 --precision bf16 --tag bf16 --backbones resnet18,resnet101 \
    --methods supervised,mean_teacher,fixmatch,unimatch performance.channels_last=true
bench 20 roofline --repeats 10 --precision bf16 --tag bf16
bench 40 inference --repeats 3 --video-frames 120
timeout 30 $PY scripts/bench.py report --out "$B" >> "$OUT/bench.log" 2>&1
log "benchmarks done"
fi

# --- 3 starts now, in the background: the CamVid study runs until the deadline ------------------
DEADLINE=$(( START + BUDGET - 45 ))           # leaves time for the final validations and the tar
MAX_TIME=$(( DEADLINE - $(date +%s) - 60 ))   # each run's training time (Lightning's max_time)
S=$OUT/study_camvid
if has study; then
log "study_camvid: $(echo $STUDY_JOBS | wc -w) runs, training stops at 2,000 steps or after $MAX_TIME s"
mkdir -p "$S"
camvid_job() {  # model method seed
  timeout $(( DEADLINE - $(date +%s) )) $PY src/train.py -m experiment=study_camvid trainer=gpu \
      data.root="$DATA/camvid_180x240" model="$1" method="$2" seed="$3" \
      +trainer.max_time="$(printf '00:00:%02d:%02d' $(( MAX_TIME / 60 )) $(( MAX_TIME % 60 )))" \
      hydra.sweep.dir="$S/$1-$2-s$3" > "$S/$1-$2-s$3.log" 2>&1 || echo "failed: $1 $2 seed $3" >> "$S/failed.txt"
}
for job in $STUDY_JOBS; do
  camvid_job ${job//:/ } &
done
( while sleep 20 && [ "$(date +%s)" -lt "$DEADLINE" ]; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> "$S/gpu_use.csv"; done ) &
fi

# --- 2. the GPU paths (while 3 runs: correctness, not speed) ------------------------------------
if has paths; then
log "GPU paths"
P=$OUT/paths
mkdir -p "$P"
path_run() {  # name, overrides...
  local name=$1; shift
  [ "$(left 150)" -gt 10 ] || { log "path $name: skipped (deadline)"; return; }
  timeout "$(left 150)" $PY src/train.py experiment=study_methods trainer=gpu +trainer.max_steps=100 \
      hydra.run.dir="$P/$name" "$@" > "$P/$name.log" 2>&1 && log "path $name: ok ($(grep -o 'val mIoU [0-9.]*' "$P/$name.log"))" \
      || log "path $name: FAILED (paths/$name.log)"
}
declare -A PATH_OVERRIDES=(
  [mean_teacher_bf16]="method=mean_teacher"
  [mean_teacher_compile]="method=mean_teacher performance.compile=true"
  [fixmatch_bf16]="method=fixmatch"
  [unimatch_bf16]="method=unimatch"
  [unimatch_encoder_fp32]="method=unimatch method.fp_at=encoder trainer.precision=32-true"
  [per_frame_bf16]="model=ssltm_per_frame"
)
( for name in $PATHS; do path_run "$name" ${PATH_OVERRIDES[$name]}; done ) &
timeout "$(left 60)" $PY - > "$P/sdpa.txt" 2>&1 <<'EOF' &
import torch
from torch.profiler import ProfilerActivity, profile
from ssltm.models.stt import STTBlock
block = STTBlock(128, num_heads=4, window=(3, 8, 8)).cuda()
x = torch.randn(8, 3, 23, 30, 128, device="cuda", requires_grad=True)  # B T H W C: 180x240 at stride 8
with torch.autocast("cuda", dtype=torch.bfloat16):
    block(x).sum().backward()  # warm-up
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        block(x).sum().backward()
names = sorted({e.name for e in prof.events() if any(k in e.name.lower() for k in ("fmha", "flash", "attention", "efficient", "cudnn"))})
print("SDPA kernels of an STT block (bf16, relative position bias as attn_mask, padded windows):")
print("\n".join(names) or "none matched")
EOF
fi
if has camvid_full; then
log "camvid at full resolution (360x480)"
timeout "$(left 240)" $PY src/train.py experiment=camvid_ssltm trainer=gpu data.root="$DATA/camvid_full" \
    data.train_transform.crop_size=[360,480] data.train_transform.scale_range=[0.75,1.25] \
    hydra.run.dir="$OUT/camvid_full" > "$OUT/camvid_full.log" 2>&1 \
    && log "camvid full resolution: ok ($(grep -o 'val mIoU [0-9.]*' "$OUT/camvid_full.log"))" \
    || log "camvid full resolution: FAILED (camvid_full.log)"
fi
if has bench_full; then
log "camvid_bench at full resolution (360x480): SSLTM vs per-frame, supervised, seeds 1-3"
F=$OUT/camvid_bench_full
mkdir -p "$F"
for model in ssltm_per_frame ssltm; do for seed in 1 2 3; do
  timeout "$(left 400)" $PY src/train.py -m experiment=camvid_bench trainer=gpu data.root="$DATA/camvid_full" \
      data.train_transform.resize=null data.eval_transform.resize=null data.train_transform.crop_size=[360,480] \
      model=$model seed=$seed hydra.sweep.dir="$F/$model-s$seed" > "$F/$model-s$seed.log" 2>&1 \
      || echo "failed: $model seed $seed" >> "$F/failed.txt" &
done; done
fi
log "waiting for the GPU paths, study_camvid and camvid_bench_full"
wait
log "done: $(ls "$S"/*/*/metrics.json 2>/dev/null | wc -l) study_camvid runs wrote metrics.json"
