#!/bin/bash
# Device call 1 (nvidia-h200; issue 11): where the encode stage and the main thread's work between videos go
# (between_profile.py, eager, 3-step videos: the UNet's share is not what it measures).
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nproc > $OUT/env.txt; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader >> $OUT/env.txt
timeout 300 python3 benchmarks/h200-2026-12-01c/between_profile.py $OUT > $OUT/log.txt 2>&1; echo "rc=$?" >> $OUT/log.txt
gzip -f $OUT/between-trace.json 2>/dev/null
grep -v Warning $OUT/log.txt | tail -40; head -50 $OUT/between-profile-cpu.txt | cut -c1-200
