"""Summarizes the part of a py-spy raw profile (`py-spy record --threads --idle -f raw`) spent inside one function:
of the stacks that hold MARK, the seconds each function below MARK was on the stack (inclusive) and at its top
(self). Used for call 1's first warm process (MARK: the artifact load, `Compiler.load`). Usage: python
pyspy_within.py PROFILE MARK [RATE_HZ] [TOP]"""

import sys
from collections import Counter
from pathlib import Path


def short(frame: str) -> str:
    for marker in ("site-packages/", "/tmp/site/", "lib/python3.12/"):
        if marker in frame:
            function, _, path = frame.partition(" (")
            return f"{function} ({path.split(marker, 1)[1]}"
    return frame


def main(path: str, mark: str, rate: float = 100.0, top: int = 40) -> None:
    inclusive, own, total = Counter(), Counter(), 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if mark not in stack:
            continue
        frames, samples = stack.split(";"), int(count)
        total += samples
        below = frames[max(i for i, f in enumerate(frames) if mark in f) :]
        for name in {short(f.rsplit(":", 1)[0]) for f in below}:  # line numbers dropped
            inclusive[name] += samples
        own[short(below[-1])] += samples
    print(f"{total / rate:.2f} s inside {mark}")
    for title, table in (("inclusive", inclusive), ("self", own)):
        print(f"--- {title} (s)")
        for name, samples in table.most_common(top):
            print(f"{samples / rate:6.2f}  {name[:180]}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(a) for a in sys.argv[3:4]), *(int(a) for a in sys.argv[4:5]))
