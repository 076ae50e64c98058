#!/usr/bin/env bash
# GPU smoke check of python -m litekit.train: a run on one GPU, a resume of its
# checkpoint under torchrun, an unbroken run to compare with, and a bad-input error; then
# the CPU tests of the command line and torchrun (gloo). Results go to $OUT (default
# build/scaleout). Usage: bash benchmarks/scaleout_check.sh   (from the repository root)
set -u
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
OUT=${OUT:-build/scaleout}
PY=${PYTHON:-python3}
mkdir -p "$OUT" /tmp/litekit-scaleout
nvidia-smi --query-gpu=name,memory.total --format=csv
$PY -c "import torch, torchvision; print(torch.__version__, torchvision.__version__, torch.cuda.is_available())"
A="--backbone efficientnet_b0 --image-size 224 --way 5 --shot 20 --query 10 --h 40 --query-batch 10"
A="$A --chunk-size 100 --tasks-per-step 4 --lr 1e-4 --validation-tasks 4 --classes 50"
A="$A --images-per-class 40 --workers 4 --validate-every 2 --quiet"
CK=/tmp/litekit-scaleout
rm -f $CK/run.pt $CK/straight.pt
echo "== one GPU, 2 steps"
$PY -m litekit.train $A --steps 2 --device cuda --checkpoint $CK/run.pt --out "$OUT/first.json" >/dev/null
echo "== torchrun (1 process) resumes it up to 4 steps"
$PY -m torch.distributed.run --standalone --nproc_per_node 1 -m litekit.train $A --steps 4 \
    --checkpoint $CK/run.pt --out "$OUT/resumed.json" >/dev/null
echo "== unbroken, 4 steps"
$PY -m litekit.train $A --steps 4 --device cuda --checkpoint $CK/straight.pt \
    --out "$OUT/straight.json" >/dev/null
OUT="$OUT" CK="$CK" $PY - <<'PY'
import json, os
from litekit import checkpoint as c
a, b = c.load(f"{os.environ['CK']}/run.pt"), c.load(f"{os.environ['CK']}/straight.pt")
worst = max((float((a["learner"][k].float() - b["learner"][k].float()).abs().max()), k)
            for k in a["learner"])
print("resumed vs unbroken: steps", a["step"], b["step"], "largest |weight difference|", worst)
for name in ("first", "resumed", "straight"):
    s = json.load(open(f"{os.environ['OUT']}/{name}.json"))
    print(name, s["device"], s["processes"], "steps", s["steps_done"], "loss", s["history"]["loss"],
          "validation", s["validation"]["accuracy"], "seconds", round(s["seconds"], 2))
PY
echo "== bad input on the GPU (expect exit status 2)"
$PY -m litekit.train --backbone squeezenet1_1 --image-size 16 --device cuda; echo "exit status $?"
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())")
echo "== one more process than the $GPUS GPU(s), each asking for one (expect every rank's"
echo "   one-line --device error and a non-zero exit status)"
$PY -m torch.distributed.run --standalone --nproc_per_node $((GPUS + 1)) -m litekit.train $A \
    --steps 1 --device cuda --tasks-per-step $((GPUS + 1)) 2>&1 | grep "litekit.train: error"
echo "exit status ${PIPESTATUS[0]}"
echo "== CPU tests of the command line, torchrun (gloo), checkpoints and bad inputs"
timeout 300 $PY -m pytest -q -o addopts="" -p no:cacheprovider tests/test_train_cli.py \
    tests/test_distributed_fit.py tests/test_checkpoint.py tests/test_distributed.py \
    tests/test_bad_inputs.py tests/test_paths.py --durations=5
