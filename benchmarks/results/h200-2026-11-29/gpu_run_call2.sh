#!/bin/bash
# Second device call: IM-VAE (paper) seeds 1-4 on Cloth-Sport, 4 processes sharing the GPU, until the deadline.
START=$(date +%s); DEADLINE=$((START + ${BUDGET_S:-270}))
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.2 IMVAE_SHARED_DATA=$PWD/.devcarry/data
mkdir -p runs/experiments /tmp/lanes && cp -r .devcarry/cache runs/experiments/cache
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 15 > /tmp/lanes/smi.log 2>&1 & SMI=$!
for s in 1 2 3 4; do
  ( echo "=== imvae_paper:$s start $(( $(date +%s) - START )) s"
    python3 -m experiments.table2 --seeds 5 --datasets cloth_sport --methods imvae_paper --only-seeds $s --out runs/experiments/gpu/table2-imvae_paper-$s > /tmp/lanes/job-$s.log 2>&1
    echo "=== imvae_paper:$s rc=$? end $(( $(date +%s) - START )) s" ) > /tmp/lanes/lane$s.log 2>&1 &
  PIDS+=($!)
done
( sleep $((DEADLINE - $(date +%s) - 25)); pkill -TERM -f "python3 -m experiments" ) & KILLER=$!
for p in "${PIDS[@]}"; do wait $p; done; kill $KILLER 2>/dev/null; kill $SMI 2>/dev/null
cat /tmp/lanes/lane*.log /tmp/lanes/smi.log > $OUT/lanes.txt; for f in /tmp/lanes/job-*.log; do echo "== $f"; tail -c 600 $f; done > $OUT/jobs_tail.txt
tar czf $OUT/runs2.tgz --exclude=checkpoints runs/experiments/cache/train runs/experiments/gpu 2>/dev/null; ls -la $OUT; cat $OUT/lanes.txt
echo "total $(( $(date +%s) - START )) s"
