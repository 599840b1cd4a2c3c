# Shared by this folder's device scripts from run4.sh on (run1-3.sh are records of what ran, kept as they ran):
# `source common.sh` from the repository root installs the carried wheels; `bench_call SECONDS ARGS...` runs the
# bench with ARGS (Hydra overrides), copies its report to $OUT and prints it.
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 SVD_BATCH_CACHE=/tmp/svdcache
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > $OUT/env.txt

bench_call() {
  local limit=$1 started=$(date +%s); shift
  timeout $limit python3 -m svd_batch.bench output_dir=/tmp/b/bench "$@" > /tmp/b-bench.log 2>&1
  echo "bench rc=$? $(( $(date +%s) - started )) s" >> $OUT/env.txt
  cp /tmp/b/bench/bench.json /tmp/b/bench/bench.md $OUT/ 2>/dev/null
  { echo "== bench.log"; tr '\r' '\n' < /tmp/b-bench.log | grep -v "videos:\|^\s*$" | tail -c 60000; } > $OUT/logs.txt
  cat $OUT/env.txt $OUT/bench.md 2>/dev/null; grep "rror\|Traceback" $OUT/logs.txt | cut -c1-300 | head -20
}
