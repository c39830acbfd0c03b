"""IAMFM (Liu et al., arXiv:2604.06263): generative-advertising auctions over strength configurations."""
