#!/bin/sh
# One id list, four shards run at once by GNU parallel on this machine (or on several with
# --sshlogin): each shard is a separate loghaul process with its own exit code, and parallel's
# --joblog records which shard failed. Settings come from the environment or the profiles file.
parallel --joblog shards.log --line-buffer \
  loghaul clouddc export --servers-from servers.txt --shard {}/4 --dest logs/ --json ::: 0 1 2 3 \
  > results.jsonl

# The same as a Slurm array (#SBATCH --array=0-3):
#   loghaul clouddc export --servers-from servers.txt --shard "$SLURM_ARRAY_TASK_ID/4" --dest logs/
