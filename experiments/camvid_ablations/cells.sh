# The cells of the real-video ablations, one place for run.sh (what to run) and aggregate.sh (what
# each study reads): CELL maps a cell to its overrides of experiment=camvid_bench, STUDY a study
# (its folder here, its config conf/experiment/camvid_study_<study>.yaml) to its cells.
declare -A CELL=(
  [stt_off]="model.stt.enabled=false"
  [rfce_no_gcc]="model.gcc.enabled=false"
  [qfce]="model.context=qfce"
  [qfce_no_gcc]="model.context=qfce model.gcc.enabled=false"
  [gcc_k1_mse]="model.gcc.k=1"
  [gcc_k5_mse]="model.gcc.k=5"
  [gcc_k1_ema]="model.gcc.k=1 model.gcc.update=ema"
  [gcc_k3_ema]="model.gcc.update=ema"
  [gcc_k5_ema]="model.gcc.k=5 model.gcc.update=ema"
  [iterative]="method=iterative"
  [fixmatch]="method=fixmatch"
  [unimatch]="method=unimatch"
  [unimatch_v2]="method=unimatch_v2"
)
for d in 1 5 10 20 29; do  # the reference distance, the same in training and evaluation
  CELL[distance_$d]="data.clip.min_distance=$d data.clip.max_distance=$d data.clip.eval_distance=$d"
done
declare -A STUDY=(
  [stt]="stt_off"
  [context]="rfce_no_gcc qfce qfce_no_gcc"
  [gcc]="gcc_k1_mse gcc_k5_mse gcc_k1_ema gcc_k3_ema gcc_k5_ema"
  [reference_distance]="distance_1 distance_5 distance_10 distance_20 distance_29"
  [methods]="iterative fixmatch unimatch unimatch_v2"
)
