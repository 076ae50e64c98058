#!/usr/bin/env bash
# GPU smoke check of python -m litekit.train: a deterministic run on one GPU, a resume of its
# checkpoint under torchrun, an unbroken run to compare with (the largest difference must be
# exactly 0), a bad-input error; then the CPU tests of the command line and torchrun (gloo).
# Results go to $OUT (default build/scaleout).
#
#   bash benchmarks/scaleout_check.sh                 # on a machine with a GPU
#   bash benchmarks/scaleout_check.sh --device cpu    # dry run: tiny runs on the CPU, the
#                                                     # GPU-only parts skipped (also
#                                                     # LITEKIT_DRY_RUN=1)
# Exit status: the number of checks that failed.
set -u
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${OUT:-build/scaleout}
PY=${PYTHON:-python3}
DEVICE=cuda
if [ "${1:-}" = "--device" ] && [ "${2:-}" = "cpu" ] || [ "${LITEKIT_DRY_RUN:-0}" = 1 ]; then
    DEVICE=cpu
fi
FAILED=0
mkdir -p "$OUT"
$PY -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"
if [ "$DEVICE" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total --format=csv
    A="--backbone efficientnet_b0 --image-size 224 --way 5 --shot 20 --query 10 --h 40"
    A="$A --query-batch 10 --chunk-size 100 --tasks-per-step 4 --lr 1e-4 --validation-tasks 4"
    A="$A --classes 50 --images-per-class 40 --workers 4 --validate-every 2"
else
    echo "== dry run on the CPU: tiny runs, GPU-only checks skipped"
    A="--backbone conv4 --width 8 --image-size 32 --way 3 --shot 2 --query 2 --h 2"
    A="$A --query-batch 2 --tasks-per-step 2 --validation-tasks 2 --classes 20"
    A="$A --images-per-class 8 --validate-every 2 --threads 1"
fi
echo "== deterministic: 2 steps on one $DEVICE, resumed under torchrun (1 process) up to 4,"
echo "   and an unbroken 4-step run; the largest difference must be exactly 0"
# shellcheck disable=SC2086  # $A is a list of options
$PY benchmarks/resume_check.py --device "$DEVICE" --torchrun --out "$OUT/resume" -- $A \
    || FAILED=$((FAILED + 1))
$PY - "$OUT/resume" <<'PY'
import json, sys
result = json.load(open(f"{sys.argv[1]}/resume_check.json"))
for name in ("first", "resumed", "straight"):
    if name in result:
        print(name, result[name])
print("largest |difference| resumed vs unbroken:", result["largest_difference"],
      "(exactly 0 required)")
PY
if [ "$DEVICE" = cuda ]; then
    echo "== bad input on the GPU (expect exit status 2)"
    $PY -m litekit.train --backbone squeezenet1_1 --image-size 16 --device cuda
    CODE=$?; echo "exit status $CODE"; [ "$CODE" = 2 ] || FAILED=$((FAILED + 1))
    GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
    echo "== one more process than the $GPUS GPU(s), each asking for one (expect every rank's"
    echo "   one-line --device error and a non-zero exit status)"
    # shellcheck disable=SC2086
    $PY -m torch.distributed.run --standalone --nproc_per_node $((GPUS + 1)) -m litekit.train \
        $A --steps 1 --device cuda --tasks-per-step $((GPUS + 1)) 2>&1 \
        | grep "litekit.train: error"
    CODE=${PIPESTATUS[0]}; echo "exit status $CODE"; [ "$CODE" != 0 ] || FAILED=$((FAILED + 1))
    echo "== CPU tests of the command line, torchrun (gloo), checkpoints and bad inputs"
    timeout 300 $PY -m pytest -q -o addopts="" -p no:cacheprovider tests/test_train_cli.py \
        tests/test_train_cli_precision.py tests/test_distributed_fit.py tests/test_checkpoint.py \
        tests/test_distributed.py tests/test_bad_inputs.py tests/test_paths.py --durations=5 \
        || FAILED=$((FAILED + 1))
else
    echo "== (dry run) the test files the GPU run would run, collected only"
    timeout 300 $PY -m pytest -q --collect-only -o addopts="" -p no:cacheprovider \
        tests/test_train_cli.py tests/test_train_cli_precision.py tests/test_distributed_fit.py \
        tests/test_checkpoint.py tests/test_distributed.py tests/test_bad_inputs.py \
        tests/test_paths.py | tail -1
    [ "${PIPESTATUS[0]}" = 0 ] || FAILED=$((FAILED + 1))
fi
echo "== scaleout_check: $FAILED check(s) failed"
exit "$FAILED"
