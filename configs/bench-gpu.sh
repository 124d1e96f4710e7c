#!/bin/bash
# The GPU checks, one short script for a lent GPU machine (make bench-gpu; there: PYB=python3 bash configs/bench-gpu.sh).
# bench train on the tiny model, XLM-R large (batch 64 and 128, and torch.compile) and XLM-R XL, random weights:
# tokens/s and MFU of our loop vs the HF Trainer, peak memory, eval throughput. One JSON file per step under OUT;
# each step has a time limit (L1..L5 seconds) so that one slow step cannot eat the lease. First run 2026-12-05 on an
# H100 (docs/benchmarks.md): tiny 53 s, large batch 64 43 s, XL 64 s; large batch 128 on 8,192 examples ran past
# 100 s (4,096 examples, one repeat: 31 s) and --compile past 120 s, hence the sizes and limits below (≤ 9.5 min).
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TRANSFORMERS_NO_ADVISORY_WARNINGS=1
PYB=${PYB:-python3}; DEV=${DEV:-cuda}; O=${OUT:-outputs/bench/gpu}; mkdir -p $O
T0=$(date +%s)
{ nvidia-smi -L; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv; } 2>&1 | tee $O/env.txt
$PYB -c "import torch, transformers, tokenizers, sys; print(sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no cuda')" 2>&1 | tee -a $O/env.txt
if [ "$DEV" = cuda ] && ! $PYB -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "bench-gpu: no CUDA device here (torch.cuda.is_available() is False); DEV=cpu runs the same steps on CPU" >&2; exit 2
fi
step() {
  local name=$1 lim=$2; shift 2
  local s=$(date +%s)
  echo "=== $name (limit ${lim}s) at +$((s-T0))s: $*"
  timeout $lim $PYB -m xlt_utils bench train --device $DEV --json "$@" > $O/$name.jsonl 2>> $O/stderr.txt
  local rc=$?
  echo "rc=$rc after $(( $(date +%s)-s ))s"
  [ $rc -ne 0 ] && tail -4 $O/stderr.txt
  $PYB -c "
import json, sys
from xlt_utils.bench import _print_table
for l in open(sys.argv[1]):
    l = l.strip()
    if l.startswith('{'): _print_table(json.loads(l))
" $O/$name.jsonl
}
step tiny ${L1:-60}
step large_b64 ${L2:-60} --model xlmr-large-random --seq-len 128
step large_b128 ${L3:-100} --model xlmr-large-random --seq-len 128 --batch-size 128 --examples 4096
step xl_b32 ${L4:-90} --model xlmr-xl-random --seq-len 128 --batch-size 32 --examples 1024 --repeats 1
step large_b128_compile ${L5:-240} --model xlmr-large-random --seq-len 128 --batch-size 128 --examples 4096 --repeats 1 --compile
echo "total $(( $(date +%s)-T0 ))s"
