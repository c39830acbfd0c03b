"""NaiAD (arXiv 2605.09918), method side: VC-PPI, strategy clustering, decoupled generation, SFT."""
