"""Run a learner's fit/test with one intra-op thread: its networks are tiny, so extra threads only
contend (measured ~10x slower per update on a loaded 2-core machine); the count is restored after."""

import torch


class SingleThreaded:
    """Mixin for a LightningModule: ``torch.set_num_threads(1)`` between ``setup`` and ``teardown``."""

    def setup(self, stage: str) -> None:
        self.saved_threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def teardown(self, stage: str) -> None:
        torch.set_num_threads(self.saved_threads)
