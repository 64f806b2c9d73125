#!/usr/bin/env bash
# GPU check for Sdxl.Net: publishes the benchmarks program self-contained (on any machine with the .NET SDK), then
# runs its gpu-check command on a machine with an NVIDIA GPU (no SDK needed there).
#
#   scripts/gpu-check/run.sh publish            # build machine: writes artifacts/gpu-check/ (copy it to the GPU machine)
#   scripts/gpu-check/run.sh check [options]    # GPU machine, from the folder holding run.sh and the published files
#   scripts/gpu-check/run.sh all [options]      # both, on a GPU machine that has the SDK
#
# check options are passed to `Sdxl.Net.Benchmarks gpu-check`: --device cuda[:N]|tensorrt[:N], --size tiny|small,
# --steps N, --fp16, --skip-graph. Exit code 0 when every check passes; the output ends with a summary line.
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
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcufft.so.12 libcudnn.so.9; do
    if ldconfig -p 2>/dev/null | grep -q "$lib" || find ${LD_LIBRARY_PATH:+${LD_LIBRARY_PATH//:/ }} -maxdepth 1 -name "$lib*" 2>/dev/null | grep -q .; then
      echo "found    $lib"
    else
      echo "MISSING  $lib (install it or add its folder to LD_LIBRARY_PATH)"
    fi
  done
  echo "== gpu-check"
  "$bin" gpu-check "$@"
}

case "${1:-}" in
  publish) shift; publish "$@" ;;
  check) shift; check "$@" ;;
  all) shift; publish; check "$@" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
