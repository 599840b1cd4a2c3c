"""python -m svd_batch.report output_dir=DIR [report.rows=P report.cols=Q]: remake an output folder's comparison
grids and gallery from its index, without a GPU."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from svd_batch.config import ExportConfig, ReportConfig
from svd_batch.results.report import make_report


@dataclass
class ReportAppConfig:
    output_dir: str = MISSING
    report: ReportConfig = field(default_factory=ReportConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


ConfigStore.instance().store(name="report_app", node=ReportAppConfig)


@hydra.main(version_base="1.3", config_path=None, config_name="report_app")
def main(cfg: DictConfig) -> None:
    config: ReportAppConfig = OmegaConf.to_object(cfg)
    result = make_report(Path(config.output_dir).expanduser(), config.report, config.export)
    for grid in result["grids"]:
        print(f"grid: {grid}")
    if result["gallery"]:
        print(f"gallery: {result['gallery']}")


if __name__ == "__main__":
    main()
