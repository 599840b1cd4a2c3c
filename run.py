"""svd-batch: render Stable Video Diffusion videos for a manifest of images over a parameter grid.

python run.py                                   # bundled samples, tiny model, offline W&B
python run.py model=svd_xt manifest=my.csv      # the real SVD-XT on a GPU
python run.py -m sample.motion_bucket_id=64,127,180   # a multirun: one result set in the sweep's folder
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from svd_batch.bytecode import keep_bytecode
from svd_batch.config import ConfigError, SvdBatchError, load_config
from svd_batch.quick_exit import exit_now

log = logging.getLogger("svd_batch")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict | None:
    keep_bytecode(cfg.cache_dir)  # before the runner imports pandas, torch and the rest: svd_batch/bytecode.py
    from svd_batch.batch.runner import run

    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    group = Path(hydra_cfg.sweep.dir).name if multirun else None  # one W&B group per multirun sweep
    own_folder = cfg.output_dir is None and not multirun
    if cfg.output_dir is None:  # a multirun's jobs share one result set: the sweep's folder
        cfg.output_dir = hydra_cfg.sweep.dir if multirun else hydra_cfg.runtime.output_dir
    try:
        if cfg.shard.count > 1 and own_folder:
            raise ConfigError("shards must write to one folder to be merged: set output_dir=PATH explicitly")
        result = run(load_config(cfg), group=group)
    except SvdBatchError as exc:
        if multirun:
            raise  # the launcher hands it back to the sweeper, which lists it beside its job
        log.error("%s", exc)
        sys.exit(2)
    return {**result.summary, "output_dir": str(result.output_dir) if result.output_dir else None}


if __name__ == "__main__":
    main()
    exit_now(0)  # everything is written: the interpreter's teardown would only add seconds
