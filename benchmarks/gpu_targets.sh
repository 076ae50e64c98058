#!/usr/bin/env bash
# The GPU targets, measured in one go (an H100 or H200; under 8 minutes in all):
#
#   bash benchmarks/gpu_targets.sh                # from the repository root (pip install -e .)
#   bash benchmarks/gpu_targets.sh --cpu-smoke    # the same parts at tiny sizes on the CPU
#                                                 # (also LITEKIT_DRY_RUN=1), to catch typos
#
# EfficientNet-B0 at 224 px, ProtoNets, N = 1000 support images, h = 8, query batch 8, 40
# queries: LITE in fp32, bf16, bf16 + channels-last (each with its floor, the floor's parts
# and the no-grad throughput: benchmarks/lite_memory.py), the same with deterministic kernels
# (their cost in speed), full back-propagation in fp32 at N = 100 and 1000 (out of memory is
# a result); ResNet-18 rows, a 320 px row, Simple CNAPs, a 512 px row (N = 100, fp32, LITE and
# full back-propagation), the backbone compiled (torch.compile,
# reduce-overhead: does compiling win?); the deterministic resumed-vs-unbroken
# check (benchmarks/resume_check.py: largest difference exactly 0); the torchrun tests of the
# command line. Then benchmarks/gpu_targets_summary.py prints the targets: LITE bf16+CL step
# <= 0.15 s and <= 1.3 x its floor, peak <= 1.0 GiB, >= 4 x faster than fp32 full
# back-propagation, no-grad >= 15,000 images/s.
#
# JSON goes to $OUT (default benchmarks/results; build/gpu-targets-smoke for the smoke run).
# Each part has a time limit, and a part that would end past the script's budget is skipped
# (and says so). Exit status: the number of parts that failed (a floor violation counts).
set -u
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
SMOKE=0
if [ "${1:-}" = "--cpu-smoke" ] || [ "${LITEKIT_DRY_RUN:-0}" = 1 ]; then SMOKE=1; fi
if [ "$SMOKE" = 1 ]; then
    RESULTS=${OUT:-build/gpu-targets-smoke}
    DEVICE=cpu; SIZE=32; LARGE=48; XL=64; N=8; N_SMALL=4; H=2; QB=2; NQ=4; WAY=2; CHUNK=4
    # tiny CPU timings are noise: the floor check is loosened, the wiring is what is checked
    REPEATS=2; BUDGET=1500; EXTRA="--threads 1 --floor-tolerance 0.5"
    RESUME="--backbone conv4 --width 8 --image-size 32 --way 3 --shot 2 --query 2 --h 2"
    RESUME="$RESUME --query-batch 2 --classes 20 --images-per-class 8 --threads 1"
else
    RESULTS=${OUT:-benchmarks/results}
    DEVICE=cuda; SIZE=224; LARGE=320; XL=512; N=1000; N_SMALL=100; H=8; QB=8; NQ=40; WAY=5
    CHUNK=100; REPEATS=10; BUDGET=470; EXTRA=""
    RESUME="--backbone efficientnet_b0 --image-size 224 --way 5 --shot 10 --query 10 --h 10"
    RESUME="$RESUME --query-batch 10 --chunk-size 50 --classes 20 --images-per-class 20"
    RESUME="$RESUME --workers 2"
fi
RESUME="$RESUME --tasks-per-step 2 --validation-tasks 0 --precision bf16 --channels-last"
mkdir -p "$RESULTS"
FAILED=0

# part LIMIT NAME COMMAND...: run COMMAND with a time limit unless it could end past BUDGET;
# STATUS is then its exit status (124: out of time), or "skipped". Its messages go to stderr,
# so that they show when the command's own output is thrown away.
part() {
    local limit=$1 name=$2
    shift 2
    if (( SECONDS + limit > BUDGET )); then
        echo "== $name: skipped (${SECONDS} s spent; it may take ${limit} s of ${BUDGET} s)" >&2
        STATUS=skipped
        return
    fi
    echo "== $name (at ${SECONDS} s)" >&2
    timeout "$limit" "$@"
    STATUS=$?
    if [ "$STATUS" != 0 ]; then
        echo "   $name: exit status $STATUS" >&2
        FAILED=$((FAILED + 1))
    fi
}

# lite ROW_NAME LIMIT OPTIONS...: one benchmarks/lite_memory.py report, gpu-targets-ROW_NAME.json
lite() {
    local name=$1 limit=$2
    shift 2
    # shellcheck disable=SC2086  # $EXTRA is a list of options
    part "$limit" "$name" $PY benchmarks/lite_memory.py --device "$DEVICE" --way "$WAY" \
        --h "$H" --query-batch "$QB" --n-query "$NQ" --chunk "$CHUNK" --repeats "$REPEATS" \
        $EXTRA --out "$RESULTS/gpu-targets-$name.json" "$@" >/dev/null
}

if [ "$SMOKE" = 1 ]; then
    echo "== CPU smoke run: tiny sizes, results in $RESULTS"
else
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
fi
$PY -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__, 'cuda', torch.cuda.is_available())"

B0="--backbone efficientnet_b0 --learner protonets"
# shellcheck disable=SC2086  # $B0 and $RESUME are lists of options
lite b0-$SIZE-lite-bf16-cl 90 $B0 --image-size "$SIZE" --n "$N" --kinds lite --precision bf16 \
    --channels-last
lite b0-$SIZE-full-fp32 150 $B0 --image-size "$SIZE" --n "$N_SMALL" "$N" --kinds full
# compiling takes minutes (3 on this CPU for the smoke run's tiny EfficientNet-B0)
lite b0-$SIZE-lite-bf16-cl-compiled 300 $B0 --image-size "$SIZE" --n "$N" --kinds lite \
    --precision bf16 --channels-last --compile reduce-overhead
lite b0-$SIZE-lite-fp32 90 $B0 --image-size "$SIZE" --n "$N" --kinds lite
lite b0-$SIZE-lite-bf16 90 $B0 --image-size "$SIZE" --n "$N" --kinds lite --precision bf16
lite b0-$SIZE-lite-bf16-cl-deterministic 90 $B0 --image-size "$SIZE" --n "$N" --kinds lite \
    --precision bf16 --channels-last --deterministic
part 150 "deterministic resumed vs unbroken" $PY benchmarks/resume_check.py --device "$DEVICE" \
    --torchrun --out "$RESULTS/resume" -- $RESUME
if [ "$SMOKE" = 1 ]; then
    part 120 "torchrun tests (collected only in the smoke run)" $PY -m pytest -q --collect-only \
        -o addopts="" -p no:cacheprovider tests/test_train_cli.py -k torchrun
else
    part 200 "torchrun tests" $PY -m pytest -q -o addopts="" -p no:cacheprovider \
        tests/test_train_cli.py -k torchrun
fi
echo "{\"exit_status\": \"$STATUS\"}" > "$RESULTS/gpu-targets-torchrun.json"
lite r18-$SIZE-fp32 120 --backbone resnet18 --image-size "$SIZE" --n "$N" --kinds lite full
lite r18-$SIZE-lite-bf16-cl 90 --backbone resnet18 --image-size "$SIZE" --n "$N" --kinds lite \
    --precision bf16 --channels-last
lite b0-$LARGE-lite-bf16-cl 90 $B0 --image-size "$LARGE" --n "$N" --kinds lite --precision bf16 \
    --channels-last
lite simple-cnaps-b0-$SIZE-lite-bf16-cl 90 --backbone efficientnet_b0 --learner simple_cnaps \
    --image-size "$SIZE" --n "$N" --kinds lite --precision bf16 --channels-last
lite b0-$XL-fp32 150 $B0 --image-size "$XL" --n "$N_SMALL" --kinds lite full
SUMMARY_OPTIONS="--image-size $SIZE --n $N"
[ "$SMOKE" = 1 ] && SUMMARY_OPTIONS="$SUMMARY_OPTIONS --smoke"
# shellcheck disable=SC2086
$PY benchmarks/gpu_targets_summary.py "$RESULTS" $SUMMARY_OPTIONS || FAILED=$((FAILED + 1))
echo "== gpu_targets: $FAILED part(s) failed, ${SECONDS} s in all"
exit "$FAILED"
