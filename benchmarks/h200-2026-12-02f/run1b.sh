#!/bin/bash
# Call 1b (carry [".whl-fa4/b"], within 30 s of ../h200-2026-12-02e/run1a.sh on the same machine): joins the two
# halves of FlashAttention-4's runtime and installs it into /tmp/site as ../h200-2026-12-02e/run1b.sh does, without
# that script's probes; the calls after it find it through fa4_site.sh.
cd "$(dirname "$0")/../.." || exit 1
[ -f /tmp/fa4/cu13.tar.xz.part-aa ] || { echo "no first half in /tmp/fa4: a fresh machine; run run1a.sh first"; exit 3; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl-fa4/b/*.whl /tmp/fa4/*.whl || exit 1
cat /tmp/fa4/cu13.tar.xz.part-aa .whl-fa4/b/cu13.tar.xz.part-ab | xz -d | tar -x -C /tmp/site || exit 1
PYTHONPATH=/tmp/site:/tmp/site/nvidia_cutlass_dsl/dsl_packages python3 -c \
  "import flash_attn.cute, importlib.metadata as m; print('flash-attn-4', m.version('flash-attn-4'))" | tee $OUT/env.txt
