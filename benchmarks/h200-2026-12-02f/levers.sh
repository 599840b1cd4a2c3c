# Sourced by run4.sh: turns on in this working copy's `h100` profile each lever of run3.sh that made its stage faster
# beside `h100` in that bench run (the decode by >= 10 ms for vae_convs_3d, the denoise by >= 50 ms for
# temporal_convs_3d) with frames within 2 levels of the seed recipe, as a commit would; notes the choice in env.txt.
python3 - >> $OUT/env.txt <<'PY'
import json, re
results = {r["name"]: r for r in json.load(open("/tmp/levers-bench.json"))["results"]}
base = results["h100"]
profile = open("conf/hardware/h100.yaml").read()
for lever, stage, margin in (("vae_convs_3d", "decode_s", 0.010), ("temporal_convs_3d", "denoise_s", 0.050)):
    row = results.get(f"h100 hardware.{lever}=true", {})
    gain = base[stage] - row[stage] if row.get(stage) and base.get(stage) else None
    keep = gain is not None and gain >= margin and (row.get("max_abs_diff") or 0) <= 2
    if keep:
        profile = re.sub(rf"^{lever}: false", f"{lever}: true", profile, flags=re.M)
    print(f"{lever}: {stage} gain {gain if gain is None else round(gain, 3)} s -> {'on' if keep else 'off'}")
open("conf/hardware/h100.yaml", "w").write(profile)
PY
grep "convs_3d" conf/hardware/h100.yaml >> $OUT/env.txt
