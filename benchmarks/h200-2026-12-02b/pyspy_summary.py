"""Summarizes a py-spy raw profile (`py-spy record --threads --idle -f raw`): per thread, the seconds each function
was on the stack (inclusive) and at its top (self), largest first. Frames are merged by function and file (the line
numbers dropped). Usage: python pyspy_summary.py PROFILE [RATE_HZ] [TOP]"""

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def frame_name(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    function, path = match.groups()
    for marker in ("site-packages/", "/tmp/site/", "svd_batch/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1] if marker != "svd_batch/" else "svd_batch/" + path.split(marker, 1)[1]
            break
    return f"{function} ({path})"


def main(path: str, rate: float = 100.0, top: int = 60) -> None:
    inclusive: dict[str, Counter] = defaultdict(Counter)
    own: dict[str, Counter] = defaultdict(Counter)
    totals: Counter = Counter()
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        thread = frames[0].split(" (")[0].removeprefix("thread ") + " " + frames[0].split(": ", 1)[-1]
        names = [frame_name(f) for f in frames[1:]]
        n = int(count)
        totals[thread] += n
        for name in set(names):
            inclusive[thread][name] += n
        if names:
            own[thread][names[-1]] += n
    for thread, total in totals.most_common():
        print(f"\n=== {thread}: {total / rate:.1f} s sampled")
        print("  inclusive:")
        for name, n in inclusive[thread].most_common(top):
            print(f"  {n / rate:7.2f} s  {name}")
        print("  self:")
        for name, n in own[thread].most_common(top // 2):
            print(f"  {n / rate:7.2f} s  {name}")


if __name__ == "__main__":
    main(sys.argv[1], *(float(a) for a in sys.argv[2:3]), *(int(a) for a in sys.argv[3:4]))
