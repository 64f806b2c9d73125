#!/usr/bin/env bash
# GPU check for Sdxl.Net: publishes the benchmarks program self-contained (on any machine with the .NET SDK), then
# runs its gpu-check command on a machine with an NVIDIA GPU (no SDK needed there).
#
#   scripts/gpu-check/run.sh publish            # build machine: writes artifacts/gpu-check/ (copy it to the GPU machine)
#   scripts/gpu-check/run.sh check [options]    # GPU machine, from the folder holding run.sh and the published files
#   scripts/gpu-check/run.sh all [options]      # both, on a GPU machine that has the SDK
#   scripts/gpu-check/run.sh dry-run            # any machine with the SDK: the same checks on the CPU provider
#
# check without options runs, in about 10 minutes on an H100/H200: (1) CUDA parity on the tiny folder and timing of a
# full-size fp16 SDXL-structured folder at 1024x1024, 30 steps, CUDA graphs off and on; (2) TensorRT parity and timing
# with shape profiles and an engine cache on the small folder (a full-size engine build alone takes several minutes:
# add --timing-size full to a tensorrt check when there is time). Peak GPU memory is sampled with nvidia-smi.
# Options given to check go to one `Sdxl.Net.Benchmarks gpu-check` run instead: --device cuda[:N]|tensorrt[:N],
# --size tiny|small, --steps N, --fp16, --skip-graph, --timing-size none|miniature|small|full, --timing-model DIR,
# --timing-steps N, --timing-side PX, --trt-cache DIR. Exit code 0 when every check passes.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rid="${RID:-linux-x64}"
out="${OUT:-$root/artifacts/gpu-check}"

publish() {
  dotnet publish "$root/tests/Sdxl.Net.Benchmarks/Sdxl.Net.Benchmarks.csproj" -c Release -r "$rid" --self-contained \
    -p:PublishSingleFile=false -o "$out"
  cp "$here/run.sh" "$out/run.sh"
  echo "Published to $out. Copy that folder to the GPU machine and run: ./run.sh check"
}

check() {
  local bin
  if [[ -x "$here/Sdxl.Net.Benchmarks" ]]; then bin="$here/Sdxl.Net.Benchmarks"; else bin="$out/Sdxl.Net.Benchmarks"; fi
  if [[ ! -x "$bin" ]]; then
    echo "No published Sdxl.Net.Benchmarks next to run.sh or in $out: run '$0 publish' first." >&2
    exit 2
  fi

  echo "== driver and GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "nvidia-smi not found: is the NVIDIA driver installed?"
  echo "== CUDA 13 / cuDNN 9 libraries the CUDA provider loads"
  # The listings are captured, not piped into `grep -q`: under pipefail an early-exiting grep makes the pipeline fail.
  known_libs="$(ldconfig -p 2>/dev/null || true)"
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcufft.so.12 libcudnn.so.9; do
    if grep -q "$lib" <<<"$known_libs" || [[ -n "$(find ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }} -maxdepth 1 -name "$lib*" 2>/dev/null || true)" ]]; then
      echo "found    $lib"
    else
      echo "MISSING  $lib (install it or add its folder to LD_LIBRARY_PATH)"
    fi
  done
  local status=0
  if (( $# > 0 )); then
    measured "$bin" gpu-check "$@" || status=$?
  else
    echo "== gpu-check: CUDA"
    measured "$bin" gpu-check --device cuda || status=$?
    echo "== gpu-check: TensorRT"
    measured "$bin" gpu-check --device tensorrt --skip-graph --timing-size small --timing-side 512 --timing-steps 30 || status=$?
  fi
  return $status
}

# Runs a command while sampling the GPU's used memory; prints the peak.
measured() {
  local log; log="$(mktemp)"
  (while true; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -n 1; sleep 0.2; done) >"$log" &
  local sampler=$! status=0
  "$@" || status=$?
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  if [[ -s "$log" ]]; then echo "peak GPU memory used: $(sort -n "$log" | tail -n 1) MiB"; fi
  rm -f "$log"
  return $status
}

# The same code path on the CPU provider (the miniature SDXL-structured folder), for machines without a GPU and CI.
dry_run() {
  dotnet build "$root/tests/Sdxl.Net.Benchmarks/Sdxl.Net.Benchmarks.csproj" -c Release -v quiet -nologo >/dev/null
  dotnet "$root/tests/Sdxl.Net.Benchmarks/bin/Release/net10.0/Sdxl.Net.Benchmarks.dll" gpu-check --device cpu "$@"
}

case "${1:-}" in
  publish) shift; publish "$@" ;;
  check) shift; check "$@" ;;
  all) shift; publish; check "$@" ;;
  dry-run) shift; dry_run "$@" ;;
  *) sed -n '2,19p' "$0"; exit 2 ;;
esac
