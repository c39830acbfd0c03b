"""Task side of Atlas: environments, data generators and evaluators, one package per method."""
