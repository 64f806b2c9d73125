#!/usr/bin/env bash
# Consumer compatibility: fresh console apps, outside the repository (none of its Directory.*.props apply), restore
# the packed packages from a local folder next to nuget.org, the way an application would:
#   a. Microsoft.Extensions.* 10.0.x (generic host + AddSdxl from configuration)
#   b. Microsoft.ML.OnnxRuntime 1.31.1 chosen by the app (instead of Sdxl.Net.Runtime.Cpu)
#   c. Microsoft.Extensions.AI 10.x with the Sdxl.Net.Extensions.AI README snippet
#   d. Sdxl.Net without a runtime package: the first pipeline must fail with a message naming Sdxl.Net.Runtime.Cpu
#   e. Sdxl.Net.Runtime.Cuda: builds, and its linux-x64 publish carries no Windows binaries
# Each must restore and build with no NU1605/NU1608 and (a–c) generate an image with the tiny random-weight demo model.
# `dotnet publish -r linux-x64` of apps a (CPU) and e (CUDA): sizes printed and bounded, no Windows binaries.
#
#   eng/consumer-test.sh FEED VERSION     (FEED holds the packages of that VERSION, e.g. from eng/pack-smoke-test.sh)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
feed="$(cd "$1" && pwd)"
version="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/sdxl-consumer.XXXXXX")"
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"
# The bound of the linux-x64 CPU publish (framework-dependent): 33 MB measured, of which ONNX Runtime's linux-x64
# natives are most; the GPU package made it 513 MB.
max_publish_mb=50
# The CUDA app: ONNX Runtime's linux-x64 CUDA and TensorRT providers are about 300 MB; without the dropped Windows
# DLLs of Microsoft.ML.OnnxRuntime.Gpu.Windows it measured 310 MB (515 MB with them).
max_cuda_publish_mb=360

cleanup() {
  rm -rf "$work"
  for id in sdxl.net sdxl.net.extensions.ai sdxl.net.runtime.cpu sdxl.net.runtime.cuda; do
    rm -rf "${cache:?}/$id/$version"
  done
}
trap cleanup EXIT
# The apps write their demo models under the temp folder: keep them in $work, removed at the end, even when an app
# ends without running its exit handlers (app d fails on purpose).
mkdir -p "$work/run-temp"

fail() { echo "consumer-test: FAIL: $*" >&2; exit 1; }
step() { echo "consumer-test: $*"; }

source "$repo/eng/consumer-app.sh"

# build_app NAME: restores and builds; NU1605 (downgrade) and NU1608 (outside a dependency's range) fail it.
build_app() {
  local app="$work/$1" log="$work/$1.build.log"
  if ! (cd "$app" && dotnet build -c Release -nologo -p:WarningsAsErrors="NU1605%3BNU1608" >"$log" 2>&1); then
    cat "$log" >&2
    fail "$1 does not build against the packages"
  fi
  if grep -E "NU1605|NU1608" "$log"; then
    fail "$1: dependency conflicts (above)"
  fi
}

# resolved NAME ID: the version of package ID that app NAME restored.
resolved() {
  grep -m 1 -o "\"$2/[^\"]*\"" "$work/$1/obj/project.assets.json" | sed -n '1s|.*/\(.*\)"|\1|p'
}

step "a. Microsoft.Extensions.* 10.0.x"
new_app ExtensionsApp "Sdxl.Net@$version" "Sdxl.Net.Runtime.Cpu@$version" "Microsoft.Extensions.Hosting@10.0.15"
cat >"$work/ExtensionsApp/Program.cs" <<'CS'
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Sdxl.Net;
using Sdxl.Net.Imaging;

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Sdxl:ModelPath"] = DemoModel.WriteToTempFolder() });
builder.Services.AddSdxl(builder.Configuration.GetSection("Sdxl"));
using var host = builder.Build();
await host.StartAsync();                        // validates the options (ValidateOnStart)
var pipeline = host.Services.GetRequiredService<SdxlPipeline>();
var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a lighthouse", Width = 64, Height = 64, Steps = 2, Seed = 1 });
using var image = result.Images[0].ToImage();
await SixLabors.ImageSharp.ImageExtensions.SaveAsPngAsync(image, args[0]);
CS
build_app ExtensionsApp
for id in Microsoft.Extensions.Hosting Microsoft.Extensions.DependencyInjection.Abstractions Microsoft.Extensions.Logging.Abstractions; do
  [[ "$(resolved ExtensionsApp "$id")" == 10.0.* ]] || fail "ExtensionsApp resolved $id $(resolved ExtensionsApp "$id"), not 10.0.x"
done
(cd "$work/ExtensionsApp" && TMPDIR="$work/run-temp/" dotnet run -c Release --no-build -- "$work/extensions.png") || fail "ExtensionsApp failed"
expect_png "$work/extensions.png"

step "b. Microsoft.ML.OnnxRuntime 1.31.1 chosen by the app"
new_app OnnxRuntimeApp "Sdxl.Net@$version" "Microsoft.ML.OnnxRuntime@1.31.1"
cp "$repo/samples/QuickStart/Program.cs" "$work/OnnxRuntimeApp/"
build_app OnnxRuntimeApp
for id in Microsoft.ML.OnnxRuntime Microsoft.ML.OnnxRuntime.Managed; do
  [[ "$(resolved OnnxRuntimeApp "$id")" == 1.31.1 ]] || fail "OnnxRuntimeApp resolved $id $(resolved OnnxRuntimeApp "$id"), not the app's 1.31.1"
done
grep -qi '"Microsoft.ML.OnnxRuntime.Gpu' "$work/OnnxRuntimeApp/obj/project.assets.json" && fail "OnnxRuntimeApp restored a GPU runtime package"
(cd "$work/OnnxRuntimeApp" && TMPDIR="$work/run-temp/" dotnet run -c Release --no-build -- "" "$work/onnxruntime.png") || fail "OnnxRuntimeApp failed"
expect_png "$work/onnxruntime.png"

step "c. Microsoft.Extensions.AI 10.x and the Sdxl.Net.Extensions.AI README snippet"
new_app AiApp "Sdxl.Net.Extensions.AI@$version" "Sdxl.Net.Runtime.Cpu@$version" "Microsoft.Extensions.AI@10.5.0"
# The README's C# block as written, with the model folder and provider of this machine substituted.
awk '/^```csharp$/ {inside = 1; next} /^```$/ && inside {exit} inside' "$repo/src/Sdxl.Net.Extensions.AI/README.md" \
  | sed -e 's|"models/sdxl-base-onnx"|DemoModel.WriteToTempFolder()|' -e 's|\.UseCuda()|.UseCpu()|' \
        -e 's|new System.Drawing.Size(1024, 1024)|new System.Drawing.Size(64, 64)|' -e 's|\["steps"\] = 30|["steps"] = 2|' \
  >"$work/AiApp/Program.cs"
grep -q "SdxlImageGenerator" "$work/AiApp/Program.cs" || fail "no C# snippet found in src/Sdxl.Net.Extensions.AI/README.md"
build_app AiApp
[[ "$(resolved AiApp Microsoft.Extensions.AI)" == 10.5.0 ]] || fail "AiApp resolved Microsoft.Extensions.AI $(resolved AiApp Microsoft.Extensions.AI)"
(cd "$work/AiApp" && TMPDIR="$work/run-temp/" dotnet run -c Release --no-build) || fail "AiApp (the README snippet) failed"
ls "$work/AiApp"/*.png >/dev/null 2>&1 || fail "the README snippet wrote no PNG"
expect_png "$(ls "$work/AiApp"/*.png | head -n 1)"

step "d. Sdxl.Net without a runtime package"
new_app NoRuntimeApp "Sdxl.Net@$version"
cp "$repo/samples/QuickStart/Program.cs" "$work/NoRuntimeApp/"
build_app NoRuntimeApp
if (cd "$work/NoRuntimeApp" && TMPDIR="$work/run-temp/" dotnet run -c Release --no-build -- "" "$work/none.png" >"$work/none.log" 2>&1); then
  fail "NoRuntimeApp ran without ONNX Runtime's native library"
fi
grep -q "Sdxl.Net.Runtime.Cpu" "$work/none.log" || { cat "$work/none.log" >&2; fail "the missing native library was not reported with the package to add"; }

# publish_linux NAME MAX_MB: `dotnet publish -r linux-x64` of app NAME; fails on Windows binaries or above MAX_MB.
publish_linux() {
  local publish="$work/publish-$1"
  (cd "$work/$1" && dotnet publish -c Release -r linux-x64 --self-contained false -o "$publish" -nologo -v q >/dev/null) \
    || fail "$1: dotnet publish -r linux-x64 (NETSDK1152 means two ONNX Runtime native packages)"
  local windows
  windows="$(find "$publish" -iname '*.dll' -exec sh -c 'head -c 2 "$1" | grep -q MZ && ! grep -q "BSJB" "$1" && echo "$1"' _ {} \; ; find "$publish" -ipath '*win-*' -o -iname '*.lib' -o -iname '*.exe')"
  [[ -z "$windows" ]] || fail "the linux-x64 publish of $1 carries Windows binaries: $windows"
  [[ -f "$publish/libonnxruntime.so" ]] || fail "the linux-x64 publish of $1 lacks libonnxruntime.so"
  local size_kb
  size_kb="$(du -sk "$publish" | cut -f1)"
  step "linux-x64 publish of $1: $((size_kb / 1024)) MB ($(find "$publish" -type f | wc -l) files; bound $2 MB)"
  (( size_kb <= $2 * 1024 )) || fail "the linux-x64 publish of $1 is $((size_kb / 1024)) MB, over $2 MB"
  rm -rf "$publish"
}

step "publishing app a (CPU) for linux-x64"
publish_linux ExtensionsApp "$max_publish_mb"

step "e. Sdxl.Net.Runtime.Cuda: a linux-x64 publish without the Windows CUDA binaries"
new_app CudaApp "Sdxl.Net@$version" "Sdxl.Net.Runtime.Cuda@$version"
cp "$repo/samples/QuickStart/Program.cs" "$work/CudaApp/"
build_app CudaApp
[[ -f "$work/CudaApp/bin/Release/net10.0/runtimes/linux-x64/native/libonnxruntime_providers_cuda.so" ]] || fail "CudaApp has no CUDA provider library"
publish_linux CudaApp "$max_cuda_publish_mb"

step "OK: apps on Microsoft.Extensions 10.0.x, ONNX Runtime 1.31.1 and Microsoft.Extensions.AI 10.5.0 build and generate; no runtime package gives a clear message"
