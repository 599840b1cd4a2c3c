"""python capped.py GIB run.py-arguments...: run.py with this process's CUDA memory capped at GIB (as on a smaller
card, or a GPU shared with another process), through torch.cuda.set_per_process_memory_fraction."""

import runpy
import sys

import torch

cap_gib = float(sys.argv[1])
total = torch.cuda.get_device_properties(0).total_memory
torch.cuda.set_per_process_memory_fraction(cap_gib * 2**30 / total, 0)
sys.argv = [sys.argv[2], *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
