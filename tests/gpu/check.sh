#!/usr/bin/env bash
# On a machine with CUDA: install (the CUDA build of torch is the user's), then compare every learner
# and LLM preset on hardware=gpu with hardware=cpu; prints a markdown table (tests/gpu/check.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'"
make install llm-models
.venv/bin/python tests/gpu/check.py --steps 200 "$@"
