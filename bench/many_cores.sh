#!/usr/bin/env bash
# The many-core measurement of issue 21: build rnnfast in place and run the LSTM table against PyTorch at
# several thread counts (train and forward-only), on a machine with more cores than the 2 of the dev box.
#   bench/many_cores.sh OUTDIR [THREADS...]     (default threads: 1 8 16)
# Writes OUTDIR/machine.txt, OUTDIR/bench.json and prints the table.  Needs Cython, numpy, scipy,
# threadpoolctl and torch importable by python3.
set -euo pipefail
out=${1:?usage: bench/many_cores.sh OUTDIR [THREADS...]}; shift
threads=${*:-1 8 16}
mkdir -p "$out"
{ lscpu; python3 -c 'import torch, numpy; print("torch", torch.__version__, torch.backends.mkldnn.is_available()); print("numpy", numpy.__version__)'; } > "$out/machine.txt" 2>&1 || true
grep -E 'Model name|^CPU\(s\)|Thread\(s\)|Core\(s\)|Socket|L2|L3|NUMA node\(s\)|^torch' "$out/machine.txt" || true
start=$(date +%s)
python3 setup.py -q build_ext --inplace > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
PYTHONUNBUFFERED=1 python3 -m rnnfast bench --cells lstm --passes train forward --backends rnnfast torch \
  --sizes 16,35,256 32,35,256 64,35,512 128,35,512 128,35,1024 --threads $threads \
  --stream-sizes none --png none --json "$out/bench.json"
