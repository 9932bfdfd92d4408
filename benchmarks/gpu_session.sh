#!/usr/bin/env bash
# The GPU figures in one prepared run (CUDA machine, repository root, mtcert importable).
#
#   bash benchmarks/gpu_session.sh [LOG_FILE]
#
# 1. bench_torch_sampler.py --setting paper: HRNetV2-W48, scale 0.25, 1024x2048,
#    n0 = 10, n = 100 (the paper's Table-1 setting; 70 s per image on an RTX 2080 Ti),
#    in fp32 and in bf16 autocast;
# 2. bench_hrnet.py on CUDA: forward time per image at 256x512 (batch 1 and 8) and at
#    the full 1024x2048;
#    and PointNet++ on 16 clouds of 2048 points;
# 3. the tiny sampler on CUDA (sampler and Certifier overhead over the bare forward);
# 4. end to end: the demo's checkpoint certified by `python -m mtcert_torch certify
#    --device cuda` beside the CPU run (different random streams, so close, not equal);
# 5. the adapter's speed options (bench_adapter_options.py): HRNetV2-W48 at the paper's
#    scale 0.25 of 1024x2048, fp32 and bf16 autocast, each with and without
#    channels_last and torch.compile: first-call (compile) time, bare network, bare
#    adapter and end to end per noisy copy, as a markdown table (adapter_options.md
#    beside the log, and in the log).
# Every step has its own time limit, so one hang cannot take the others' results.
set -u
LOG=${1:-gpu_session.log}
WORK=$(mktemp -d)
: >"$LOG"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
# step NAME SECONDS COMMAND...: run it under a time limit, show its tail, append it to the log
step() {
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    echo "=== $name"
    timeout "$limit" "$@" >"$WORK/$name.txt" 2>&1
    local rc=$?
    tail -n 25 "$WORK/$name.txt"
    echo "=== $name: exit $rc, $((SECONDS - t0)) s"
    { echo "=== $name: exit $rc, $((SECONDS - t0)) s"; cat "$WORK/$name.txt"; } >>"$LOG"
}
step env 30 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv;
  $PY -c 'import torch, numpy, numba, scipy; print(\"torch\", torch.__version__,
  \"cuda\", torch.version.cuda, \"numpy\", numpy.__version__, \"numba\", numba.__version__,
  \"scipy\", scipy.__version__)'"
step sampler_paper_fp32 120 $PY benchmarks/bench_torch_sampler.py --setting paper --images 3
step sampler_paper_bf16 90 $PY benchmarks/bench_torch_sampler.py --setting paper --images 3 \
    --autocast bf16
step hrnet_256x512_b1 60 $PY benchmarks/bench_hrnet.py --device cuda --batch 1
step hrnet_256x512_b8 60 $PY benchmarks/bench_hrnet.py --device cuda --batch 8
step hrnet_1024x2048_b1 60 $PY benchmarks/bench_hrnet.py --device cuda --batch 1 \
    --height 1024 --width 2048
step pointnet2_b16 60 $PY benchmarks/bench_pointnet2.py --device cuda --batch 16
step sampler_tiny_cuda 45 $PY benchmarks/bench_torch_sampler.py --setting tiny --device cuda
demo=$WORK/demo
step demo_cpu 100 $PY -c "from mtcert_torch.runs.demo import run_demo; run_demo('$demo', progress=False)"
step certify_cuda 60 $PY -m mtcert_torch certify --model mtcert_torch.data.synthetic:TinySegNet \
    --checkpoint "$demo/tiny.pt" --data "$demo/data" --layout folder --num-classes 3 \
    --sigma 0.25 --n0 10 --n 100 --alpha 0.001 --batch-size 100 --out "$WORK/cuda_certify" \
    --device cuda --no-progress
cp "$demo/certify/summary.md" "$WORK/summary_cpu.md" 2>/dev/null
cp "$WORK/cuda_certify/summary.md" "$WORK/summary_cuda.md" 2>/dev/null
echo "=== summaries (cpu, then cuda)"
cat "$WORK/summary_cpu.md" "$WORK/summary_cuda.md" 2>/dev/null
cat "$WORK/summary_cpu.md" "$WORK/summary_cuda.md" >>"$LOG" 2>/dev/null
step adapter_options 900 $PY benchmarks/bench_adapter_options.py --device cuda \
    --model hrnetv2_w48 --height 1024 --width 2048 --scale 0.25 --batch 16 --samples 64 \
    --out "$WORK/adapter_options.md"
cp "$WORK/adapter_options.md" "$(dirname "$LOG")/adapter_options.md" 2>/dev/null
echo "=== adapter options"
cat "$WORK/adapter_options.md" 2>/dev/null
cat "$WORK/adapter_options.md" >>"$LOG" 2>/dev/null
