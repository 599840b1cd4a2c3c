"""svd-batch's multirun sweeper (Hydra finds sweepers only in the `hydra_plugins` package): Hydra's basic sweeper,
plus one table of the sweep's jobs when they are done (svd_batch.batch.multirun.job_table)."""

from __future__ import annotations

import logging
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.utils import JobReturn

from svd_batch.batch.multirun import job_table

log = logging.getLogger("svd_batch.multirun")


class JobTableSweeper(BasicSweeper):
    def setup(self, **kwargs: Any) -> None:
        super().setup(**kwargs)
        self.returns: list[JobReturn] = []
        launch = self.launcher.launch

        def launch_and_keep(job_overrides, initial_job_idx):
            returns = launch(job_overrides, initial_job_idx=initial_job_idx)
            self.returns.extend(returns)
            return returns

        self.launcher.launch = launch_and_keep

    def sweep(self, arguments: list[str]) -> Any:
        try:
            return super().sweep(arguments)
        finally:
            if self.returns:
                log.info("%s", job_table(self.returns))
