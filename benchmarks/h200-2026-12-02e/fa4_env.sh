# Sourced by this folder's calls after run1b.sh, on the same warm machine: FlashAttention-4 as run1b.sh installed it
# in /tmp/site (the `cutlass` DSL packages sit under a .pth that PYTHONPATH does not read), and `FA4` = 1 when
# run1b.sh's step A/B found it faster (then `use_fa4` puts it in the `h100` profile of this working copy, as the
# commit would).
export PYTHONPATH=$PYTHONPATH:/tmp/site/nvidia_cutlass_dsl/dsl_packages
FA4=$(python3 -c "import json; r = json.load(open('/tmp/fa4-step.json')); print(int(r.get('fa4_saves_ms_per_step', 0) > 2 and r.get('max_diff_fa4_vs_default', 1) < 0.1))" 2>/dev/null || echo 0)
use_fa4() {
  [ "$FA4" = 1 ] && sed -i 's/^spatial_attention: default .*/spatial_attention: fa4/' conf/hardware/h100.yaml
  grep "^spatial_attention" conf/hardware/h100.yaml | tee -a $OUT/env.txt
}
