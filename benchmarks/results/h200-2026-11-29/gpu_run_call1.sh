#!/bin/bash
# One device call: versions, GPU throughput benchmark, then full-budget Cloth-Sport runs in 16 lanes until the deadline.
START=$(date +%s); DEADLINE=$((START + ${BUDGET_S:-540}))
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.055 IMVAE_SHARED_DATA=$PWD/.devcarry/data
mkdir -p runs/experiments /tmp/lanes && cp -r .devcarry/cache runs/experiments/cache
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; python3 -c "import sys,jax,flax,optax,orbax.checkpoint as o,chex,pyarrow,numpy;print(sys.version.split()[0],'jax',jax.__version__,'flax',flax.__version__,'optax',optax.__version__,'orbax',o.__version__ if hasattr(o,'__version__') else '?','chex',chex.__version__,'pyarrow',pyarrow.__version__,'numpy',numpy.__version__);print(jax.devices())"; } 2>&1 | tee $OUT/versions.txt
timeout 150 python3 benchmarks/bench_train.py --json > $OUT/bench_train.txt 2>&1; echo "bench rc=$? at $(( $(date +%s) - START )) s" | tee -a $OUT/versions.txt
tail -5 $OUT/bench_train.txt
if ! grep -q train_samples_per_s $OUT/bench_train.txt; then echo "benchmark failed: stopping"; tail -40 $OUT/bench_train.txt; exit 1; fi
T1=(); for s in 1 2 3 4; do for m in table2:imvae_paper table2:sasrec table2:imvae_authors table2:cd_vae table2:sd_vae table3:no_psg table3:no_if_ds table3:no_dn; do T1+=("$m:$s"); done; done
T2=(); for v in 0.001 0.002 0.003 0.004 0.006 0.007 0.008 0.009; do T2+=("figure3:lambda_a=$v:0"); done; for v in 0.002 0.003 0.004 0.005 0.006 0.007 0.008 0.009; do T2+=("figure3:lambda_t=$v:0"); done
T3=("figure3:T=15:0" "figure3:T=25:0" "table3:imvae_keep_pseudo:0" "table3:imvae_keep_pseudo:1" "table3:imvae_keep_pseudo:2")
LEFT=$((DEADLINE - $(date +%s) - 45)); echo "lanes get $LEFT s"
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 20 > /tmp/lanes/smi.log 2>&1 & SMI=$!
for i in $(seq 0 15); do
  jobs=("${T1[$i]}" "${T1[$((i+16))]}" "${T2[$i]}"); [ -n "${T3[$i]:-}" ] && jobs+=("${T3[$i]}")
  ( for j in "${jobs[@]}"; do IFS=: read t m s <<< "$j"
      [ $(date +%s) -ge $((DEADLINE - 60)) ] && { echo "=== $j skipped: deadline"; break; }
      echo "=== $j start $(( $(date +%s) - START )) s"
      python3 -m experiments.$t --seeds 5 --datasets cloth_sport --methods "$m" --only-seeds $s --out "runs/experiments/gpu/$t-$m-$s" > /tmp/lanes/job-$t-$m-$s.log 2>&1
      echo "=== $j rc=$? end $(( $(date +%s) - START )) s"; done ) > /tmp/lanes/lane$i.log 2>&1 &
  PIDS+=($!)
done
sleep 1; ( sleep $LEFT; pkill -TERM -f "python3 -m experiments" ) & KILLER=$!
for p in "${PIDS[@]}"; do wait $p; done; kill $KILLER 2>/dev/null
kill $SMI 2>/dev/null; cat /tmp/lanes/smi.log >> $OUT/versions.txt
cat /tmp/lanes/lane*.log > $OUT/lanes.txt; tail -3 /tmp/lanes/job-*.log > $OUT/jobs_tail.txt 2>&1
tar czf /tmp/runs.tgz --exclude=checkpoints runs/experiments/cache/train runs/experiments/gpu /tmp/lanes 2>/dev/null
split -b 15M /tmp/runs.tgz $OUT/runs.tgz.part-; ls -la $OUT; cat $OUT/lanes.txt | grep rc= | sort | head -60
echo "total $(( $(date +%s) - START )) s"
