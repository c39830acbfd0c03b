"""Method side of Atlas: one LightningModule per method and baseline, plus shared building blocks."""
