#!/bin/bash
# Call 1a (issue 11; carry [".whl-fa4/a"]): the first half of FlashAttention-4's runtime. nvidia-cutlass-dsl-libs-cu13
# 4.8.1 is a 92 MB wheel (63.6 MB as xz -9 of its files), over one call's 64 MiB carry, so it travels in two halves
# on one warm machine: this call leaves `.whl-fa4/a` (the xz archive's first 33,000,000 bytes, and the small wheels
# the step A/B needs: diffusers, hydra-core, omegaconf, antlr4, nvidia-cutlass-dsl-libs-core) in /tmp/fa4;
# run1b.sh (carry [".whl-fa4/b"]) must follow within the machine's 30 s warm window. The archive was made with
# `tar -C <the cu13 wheel unzipped> -cf - . | xz -9 | split -b 33000000` (sha256 of the whole starts bc991f5603490a7b).
cd "$(dirname "$0")/../.." && mkdir -p /tmp/fa4 && cp .whl-fa4/a/* /tmp/fa4/ && ls -la /tmp/fa4 | tee $OUT/part-a.txt
