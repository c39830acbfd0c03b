"""Task side of CompFlow (Kong et al., arXiv:2505.23062): shifted-dynamics environment pairs,
locally generated offline source datasets and closed-form / simulator-stepped true dynamics gaps."""
