"""svd-batch: render Stable Video Diffusion videos for a manifest of images over a parameter grid.

python run.py                                   # bundled samples, tiny model, offline W&B
python run.py model=svd_xt manifest=my.csv      # the real SVD-XT on a GPU
python run.py -m sample.motion_bucket_id=64,127,180
"""

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from svd_batch.batch.runner import run
from svd_batch.config import ConfigError, SvdBatchError, load_config

log = logging.getLogger("svd_batch")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    # one W&B group per multirun sweep, one run per sweep job
    group = Path(hydra_cfg.sweep.dir).name if hydra_cfg.mode == RunMode.MULTIRUN else None
    try:
        if cfg.shard.count > 1 and cfg.output_dir == hydra_cfg.runtime.output_dir:
            raise ConfigError("shards must write to one folder to be merged: set output_dir=PATH explicitly")
        run(load_config(cfg), group=group)
    except SvdBatchError as exc:
        log.error("%s", exc)
        sys.exit(2)


if __name__ == "__main__":
    main()
