# Sourced after ../h200-2026-12-01c/common.sh by the calls after run1b.sh on the same machine: FlashAttention-4 as
# run1b.sh installed it in /tmp/site (its `cutlass` DSL packages sit under a .pth file that PYTHONPATH does not read).
export PYTHONPATH=$PYTHONPATH:/tmp/site/nvidia_cutlass_dsl/dsl_packages
python3 -c "import importlib.metadata as m; print('flash-attn-4', m.version('flash-attn-4'))" >> $OUT/env.txt 2>&1
