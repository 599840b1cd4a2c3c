#!/bin/bash
# Device calls for a later session (issue 11), NOT RUN yet: FlashAttention-4 for the spatial attention (fa4_probe.py).
# Its runtime, nvidia-cutlass-dsl-libs-cu13 4.8.1, is a 92 MB wheel (63.6 MB as xz -9 of its files): over one call's
# 64 MiB carry, so it travels in two halves on one warm machine. Call A (this script, carry [".whl-fa4/a"]) leaves
# the first half in /tmp/fa4; call B (run7b.sh, carry [".whl-fa4/b"]) must follow within the machine's 30 s warm
# window. `.whl-fa4/` (ignored): a/ the xz archive's first 33,000,000 bytes; b/ the rest, plus flash-attn-4 4.0.0b36,
# nvidia-cutlass-dsl 4.8.1 and -libs-base, apache-tvm-ffi 0.1.15.post2, torch-c-dlpack-ext 0.1.5, quack-kernels 0.6.5
# (made with `split -b 33000000` of `tar -C <the cu13 wheel unzipped> -cf - . | xz -9`; sha256 of the whole starts
# bc991f5603490a7b).
cd "$(dirname "$0")/../.." && mkdir -p /tmp/fa4 && cp .whl-fa4/a/* /tmp/fa4/ && ls -la /tmp/fa4 | tee $OUT/part-a.txt
