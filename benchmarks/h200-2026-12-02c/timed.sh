# `timed LIMIT NAME SEED COMMAND...` (sourced; needs $B and $OUT): runs the command with seed SEED into $B/NAME, then
# appends to $OUT/times.txt its first video's times from the command's start (index row and video file) and stages.
timed() {
  local limit=$1 name=$2 seed=$3; shift 3; local t0=$(date +%s.%N)
  timeout $limit "$@" "sweep.grid.seed=[$seed]" hydra.run.dir=$B/$name > $B/$name.log 2>&1; local rc=$?
  python3 - "$name" "$t0" "$rc" "$(date +%s.%N)" $B/$name >> $OUT/times.txt <<'PY'
import os, sys, pandas as pd
name, t0, rc, t1, folder = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4]), sys.argv[5]
try:
    row = pd.read_csv(f"{folder}/index.csv").iloc[0]
    first = round(pd.Timestamp(row["finished_at"]).timestamp() - t0, 1)
    video = round(os.path.getmtime(f"{folder}/{row['output']}") - t0, 1)
    stages = " ".join(f"{k[5:-2]} {row[k]:.2f}" for k in row.index if k.startswith("time_"))
except Exception as exc:
    first, video, stages = f"no index ({exc})", "", ""
print(f"{name}: rc={rc} command {t1 - t0:.1f} s, first video {first} s (file {video} s) ({stages})")
PY
}
