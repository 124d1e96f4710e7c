#!/bin/bash
# The GPU checks, one short script for a lent GPU machine (make bench-gpu; there: PYB=python3 bash configs/bench-gpu.sh).
# `python -m xlt_utils bench gpu` (xlt_utils/bench.py, GPU_STEPS) in priority order, each step within its own time
# limit and all within 540 s including warm-ups: XLM-R large (random weights from its config, nothing downloaded) at
# ≈50 tokens per example and at up to 384, our loop packed and padded vs the HF Trainer at its best settings
# (group_by_length, bf16, fused AdamW); then XLM-R XL; torch.compile last, with the time left. One JSON file per step
# (tokens/s, MFU, peak memory per side; a torch.profiler summary for the large steps) and summary.json under OUT.
# Without CUDA it refuses in one line; `bench gpu --tiny` runs the same steps on a micro model on CPU (a test).
# The outer timeout is the backstop: 570 s, so a machine lent for 10 minutes still returns the files.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_NO_ADVISORY_WARNINGS=1
PYB=${PYB:-python3}; O=${OUT:-outputs/bench/gpu}; mkdir -p "$O"
T0=$(date +%s)
{ nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv; } > "$O/env.txt" 2>&1
"$PYB" -c "import torch, transformers, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__)" >> "$O/env.txt" 2>&1
cat "$O/env.txt"
timeout ${LIMIT:-570} "$PYB" -m xlt_utils bench gpu --out "$O" "$@" 2> >(tee -a "$O/stderr.txt" | grep -v "it/s\]" >&2)
rc=$?
echo "bench-gpu: rc=$rc after $(( $(date +%s)-T0 ))s; files in $O"
exit $rc
