"""NaiAD (arXiv 2605.09918), task side: the dataset schema, seed set, simulators and tasks."""
