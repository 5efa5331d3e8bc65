#!/usr/bin/env bash
# The many-core measurement of issue 21, in one run on a machine with more cores than the 2 of the dev box:
# build rnnfast in place, then
#   1. the LSTM table against PyTorch at each thread count (train and forward-only), and GRU and RNN at the most;
#   2. where the time goes: the step paths (bench/step_paths.py), the share outside GEMM on one thread
#      (bench/gemm_share.py), the micro-kernel's product against OpenBLAS (bench/microkernel_forms.py), and the
#      register kernel and the product's structure alone (bench/register_blockings.c, bench/packed_structure.c).
#   bench/many_cores.sh OUTDIR [THREADS...]     (default threads: 1 8 16; about 8 minutes on 16 cores)
# Writes OUTDIR/log.txt (everything printed), OUTDIR/machine.txt, OUTDIR/build.log and OUTDIR/*.json.  Needs gcc,
# Cython, numpy, scipy, threadpoolctl and torch importable by python3.  Each part has a time limit, so that a slow
# machine still returns the parts before it.
set -uo pipefail
out=${1:?usage: bench/many_cores.sh OUTDIR [THREADS...]}; shift
threads=${*:-1 8 16}
most=${threads##* }
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}  # the bench scripts import the in-place build
{ lscpu; python3 -c 'import torch, numpy; print("torch", torch.__version__, torch.backends.mkldnn.is_available()); print("numpy", numpy.__version__)'; } > "$out/machine.txt" 2>&1
grep -E 'Model name|^CPU\(s\)|Thread\(s\)|Core\(s\)|Socket|L2|L3|NUMA node\(s\)|^torch' "$out/machine.txt"
start=$(date +%s)
python3 setup.py -q build_ext --inplace > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"
python3 -c 'import rnnfast; rnnfast.show_config()'
part() { echo "== $1 ($(date -u +%T) UTC)"; shift; "$@" || echo "(exit status $?)"; }
part "LSTM table" timeout 400 python3 -m rnnfast bench --cells lstm --passes train forward --backends rnnfast torch \
  --sizes 32,35,256 64,35,512 128,35,512 128,35,1024 16,35,256 --threads $threads \
  --stream-sizes none --png none --json "$out/bench.json"
part "GRU and RNN" timeout 60 python3 -m rnnfast bench --cells gru rnn --passes train --backends rnnfast torch \
  --sizes 32,35,256 64,35,512 --threads "$most" --blocks 2 --stream-sizes none --png none \
  --json "$out/bench_gru_rnn.json"
part "step paths" timeout 120 python3 bench/step_paths.py --sizes 32,35,256 64,35,512 128,35,512 \
  --threads 1 "$most" --rounds 3 --seconds 0.15
part "share outside GEMM" timeout 90 python3 bench/gemm_share.py --repeats 3
part "micro-kernel forms" timeout 60 python3 bench/microkernel_forms.py --threads 1 "$most"
for name in register_blockings packed_structure; do
  gcc -O3 -march=x86-64-v4 -mprefer-vector-width=512 -fopenmp -Isrc "bench/$name.c" -o "$out/$name" &&
    part "$name" timeout 60 bash -c "'$out/$name' 1 && '$out/$name' $most"
done
echo "== done ($(date -u +%T) UTC)"
