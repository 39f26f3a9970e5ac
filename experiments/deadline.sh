#!/usr/bin/env bash
# Train experiments' pending runs until a deadline (a lent or pre-emptible GPU), then pack the
# finished runs (records and metrics, no checkpoints) for `python -m experiments.store merge`.
#
#   BUDGET_S=480 WORKERS=8 OUT=runs/lease experiments/deadline.sh \
#       "table2 --seeds 5 --datasets cloth_sport" "table3 --seeds 5"
#
# Each argument is one `python -m experiments.NAME ...` command line, run in turn with
# `--parallel $WORKERS` while time is left; at the deadline the running command is interrupted
# (its workers stop; their runs resume from their checkpoints if this machine trains them
# again). Size WORKERS so that runs finish inside the budget: on an H200 a 100-epoch IM-VAE run
# took about 2.7 s per epoch with 4 runs sharing the GPU (experiments/RESULTS.md, "A lent H200").
# Writes $OUT/<NAME>.log per command and $OUT/runs.tgz (the run store without checkpoints);
# at home: `tar xzf runs.tgz -C /tmp/lease && python -m experiments.store merge /tmp/lease/runs/experiments/cache/train`.
set -u
start=$(date +%s)
deadline=$((start + ${BUDGET_S:-480}))
out=${OUT:-runs/lease}
store=${STORE:-runs/experiments/cache/train}
mkdir -p "$out"
for job in "$@"; do
  left=$((deadline - $(date +%s) - 20))  # 20 s kept to pack
  if [ "$left" -le 30 ]; then
    echo "deadline: not started: $job"
    continue
  fi
  name=${job%% *}
  echo "$(date -u +%H:%M:%S) start ($left s left): python -m experiments.$job --parallel ${WORKERS:-4}"
  # shellcheck disable=SC2086  # the job is a command line: split it
  timeout --signal=INT --kill-after=15 "$left" python -m experiments.$job --parallel "${WORKERS:-4}" > "$out/$name.log" 2>&1
  rc=$?  # 124: stopped at the deadline
  echo "$(date -u +%H:%M:%S) end (exit $rc): $name"
done
if [ -d "$store" ]; then
  tar czf "$out/runs.tgz" --exclude=checkpoints "$store"
  echo "packed: $out/runs.tgz ($(find "$store" -name record.json | wc -l) finished runs in the store)"
fi
echo "total $(( $(date +%s) - start )) s"
