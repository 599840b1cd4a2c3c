"""python -m svd_batch.report output_dir=DIR [report.rows=P report.cols=Q] [report.quality=true]: rebuild an output
folder's index from its workers' journals, then its comparison grids and gallery, without a GPU (also while workers
still run: the result covers what is journalled so far). report.quality=true first measures the videos that lack
quality measures (the CLIP one with the folder's model, when it is a local or tiny one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from svd_batch.batch.records import OutputFolder
from svd_batch.config import ExportConfig, ModelConfig, ModelInit, ReportConfig
from svd_batch.results.backfill import backfill_quality, folder_config
from svd_batch.results.report import make_report


@dataclass
class ReportAppConfig:
    output_dir: str = MISSING
    report: ReportConfig = field(default_factory=ReportConfig)
    export: ExportConfig = field(default_factory=ExportConfig)


ConfigStore.instance().store(name="report_app", node=ReportAppConfig)


def folder_similarity(root: Path):
    """The CLIP measure through the image encoder of the model that wrote the folder, or None when that model is
    not at hand (random weights measure nothing; a hub id is not downloaded here)."""
    config = folder_config(root)
    if config is None:
        return None
    model = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), config.model))
    if model.init is ModelInit.random:
        return None
    import torch

    from svd_batch.engine.models import load_pipeline
    from svd_batch.engine.pipeline import VideoGenerator

    try:
        return VideoGenerator(load_pipeline(model, torch.float32, "cpu")).subject_similarity
    except Exception as exc:  # not loadable here: the other measures still run
        print(f"quality: subject_similarity stays empty, the model cannot be loaded here ({exc})")
        return None


@hydra.main(version_base="1.3", config_path=None, config_name="report_app")
def main(cfg: DictConfig) -> None:
    config: ReportAppConfig = OmegaConf.to_object(cfg)
    folder = OutputFolder(Path(config.output_dir).expanduser())  # read-only: no journal of its own
    if not folder.journals.is_dir() and not any(folder.root.glob("journal*.jsonl")):
        raise SystemExit(f"{folder.root} has no journals: point output_dir at a folder svd-batch has written")
    with folder.report_lock():
        if config.report.quality:
            measured = backfill_quality(folder.root, folder_similarity(folder.root))
            print(f"quality: measured {measured} video(s)")
        index = folder.write_index()
        result = make_report(folder.root, config.report, config.export)
    print(f"index: {folder.index_path} ({len(index)} jobs)")
    for grid in result["grids"]:
        print(f"grid: {grid}")
    if result["gallery"]:
        print(f"gallery: {result['gallery']}")


if __name__ == "__main__":
    main()
