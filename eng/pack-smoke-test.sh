#!/usr/bin/env bash
# Packs Sdxl.Net, Sdxl.Net.Extensions.AI, the runtime packages and the sdxl tool, checks the packages' contents and
# dependencies (minimum versions, no native ONNX Runtime in Sdxl.Net, every tool package under nuget.org's 250 MB),
# installs the tool and runs its demo, then builds a fresh console app against the packed Sdxl.Net and
# Sdxl.Net.Runtime.Cpu (not the projects) with the README quick start (samples/QuickStart/Program.cs) and checks that
# it writes a PNG. The model is the tiny random-weight one QuickStart writes when given no folder.
#
#   eng/pack-smoke-test.sh [artifacts-dir]     (packages are kept there when given, with the version in version.txt,
#                                               for eng/consumer-test.sh; otherwise in a temp folder)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sdxl-pack-smoke.XXXXXX")"
feed="${1:-$work/feed}"
# A unique prerelease version, so the global NuGet cache never serves a stale package of an earlier run.
base_version="$(dotnet msbuild "$repo/src/Sdxl.Net/Sdxl.Net.csproj" -getProperty:Version -nologo)"
version="$base_version-smoke.$(date +%Y%m%d%H%M%S).$$"
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"

# nuget.org refuses packages over 250 MB.
max_package_bytes=$((250 * 1000 * 1000))

cleanup() {
  rm -rf "$work"
  for id in sdxl.net sdxl.net.extensions.ai sdxl.net.runtime.cpu sdxl.net.runtime.cuda \
      sdxl.cli sdxl.cli.linux-x64 sdxl.cli.linux-arm64 sdxl.cli.osx-arm64 sdxl.cli.win-x64; do
    rm -rf "${cache:?}/$id/$version"
  done
}
trap cleanup EXIT
mkdir -p "$work/run-temp"

fail() { echo "pack-smoke-test: FAIL: $*" >&2; exit 1; }
step() { echo "pack-smoke-test: $*"; }
source "$repo/eng/consumer-app.sh"

step "packing $version into $feed"
mkdir -p "$feed"
for project in src/Sdxl.Net/Sdxl.Net.csproj src/Sdxl.Net.Extensions.AI/Sdxl.Net.Extensions.AI.csproj \
    src/Sdxl.Net.Runtime.Cpu/Sdxl.Net.Runtime.Cpu.csproj src/Sdxl.Net.Runtime.Cuda/Sdxl.Net.Runtime.Cuda.csproj \
    samples/Sdxl.Cli/Sdxl.Cli.csproj; do
  dotnet pack "$repo/$project" -c Release -o "$feed" -p:Version="$version" -p:ContinuousIntegrationBuild=true -nologo -v q \
    || fail "dotnet pack $project"
done

for id in Sdxl.Net Sdxl.Net.Extensions.AI; do
  nupkg="$feed/$id.$version.nupkg"
  [[ -f "$nupkg" ]] || fail "$nupkg was not produced"
  [[ -f "$feed/$id.$version.snupkg" ]] || fail "$id.$version.snupkg (symbols) was not produced"
  listing="$(unzip -l "$nupkg")"
  for entry in README.md "lib/net10.0/$id.dll" "lib/net10.0/$id.xml"; do
    grep -q " $entry\$" <<<"$listing" || fail "$id.$version.nupkg lacks $entry"
  done
  nuspec="$(unzip -p "$nupkg" "$id.nuspec")"
  grep -q '<license type="expression">MIT</license>' <<<"$nuspec" || fail "$id: no MIT license expression"
  grep -q '<repository type="git" url="https://' <<<"$nuspec" || fail "$id: no repository URL"
  grep -q '<readme>README.md</readme>' <<<"$nuspec" || fail "$id: no package readme"
done
echo "$version" >"$feed/version.txt"

# Dependencies are minimum versions (an app may bring newer ones); only ImageSharp is capped, below 3.0.
for id in Sdxl.Net Sdxl.Net.Extensions.AI Sdxl.Net.Runtime.Cpu Sdxl.Net.Runtime.Cuda; do
  nuspec="$(unzip -p "$feed/$id.$version.nupkg" "$id.nuspec")"
  pinned="$(grep -o '<dependency id="[^"]*" version="\[[^"]*"' <<<"$nuspec" | grep -v 'id="SixLabors.ImageSharp" version="\[2\.1\.13, 3\.0\.0)"' || true)"
  [[ -z "$pinned" ]] || fail "$id pins exact or bounded versions: $pinned"
done
sdxl_nuspec="$(unzip -p "$feed/Sdxl.Net.$version.nupkg" Sdxl.Net.nuspec)"
grep -q '<dependency id="Microsoft.ML.OnnxRuntime.Managed"' <<<"$sdxl_nuspec" || fail "Sdxl.Net does not depend on Microsoft.ML.OnnxRuntime.Managed"
if grep -E '<dependency id="Microsoft.ML.OnnxRuntime(\.Gpu[^"]*)?"' <<<"$sdxl_nuspec"; then
  fail "Sdxl.Net depends on a native ONNX Runtime package (above); natives belong to Sdxl.Net.Runtime.*"
fi
grep -q '<dependency id="Microsoft.ML.OnnxRuntime" version="' <<<"$(unzip -p "$feed/Sdxl.Net.Runtime.Cpu.$version.nupkg" Sdxl.Net.Runtime.Cpu.nuspec)" \
  || fail "Sdxl.Net.Runtime.Cpu does not depend on Microsoft.ML.OnnxRuntime"
cuda_nuspec="$(unzip -p "$feed/Sdxl.Net.Runtime.Cuda.$version.nupkg" Sdxl.Net.Runtime.Cuda.nuspec)"
# Listings are captured before matching: under pipefail, `unzip -l | grep -q` fails whenever grep exits before unzip
# has written its last line (unzip writes unbuffered, so the SIGPIPE race is real on a busy machine).
cuda_listing="$(unzip -l "$feed/Sdxl.Net.Runtime.Cuda.$version.nupkg")"
grep -q "buildTransitive/net10.0/Sdxl.Net.Runtime.Cuda.targets" <<<"$cuda_listing" \
  || fail "Sdxl.Net.Runtime.Cuda lacks the targets that keep Windows DLLs out of non-Windows publishes"
for native in Microsoft.ML.OnnxRuntime.Gpu.Linux Microsoft.ML.OnnxRuntime.Gpu.Windows; do
  grep -q "<dependency id=\"$native\"" <<<"$cuda_nuspec" || fail "Sdxl.Net.Runtime.Cuda does not depend on $native"
done

step "checking the sdxl tool packages"
tools=("$feed"/Sdxl.Cli.*"$version".nupkg)
(( ${#tools[@]} >= 5 )) || fail "expected the Sdxl.Cli pointer package and four RID-specific ones; found ${tools[*]}"
for nupkg in "${tools[@]}"; do
  bytes="$(stat -c %s "$nupkg")"
  step "  $(basename "$nupkg"): $((bytes / 1000000)) MB"
  (( bytes < max_package_bytes )) || fail "$(basename "$nupkg") is $bytes bytes; nuget.org accepts at most 250 MB"
done
linux_tool="$(unzip -l "$feed/Sdxl.Cli.linux-x64.$version.nupkg")"
grep -q "tools/net10.0/linux-x64/libonnxruntime.so" <<<"$linux_tool" || fail "the linux-x64 tool lacks ONNX Runtime's CPU library"
if grep -Ei "/onnxruntime[^/ ]*\.dll$|providers_(cuda|tensorrt)|/win-|/osx-" <<<"$linux_tool"; then
  fail "the linux-x64 tool carries other platforms' or CUDA natives (above)"
fi

step "installing the tool from the feed and running its demo"
(dotnet tool install Sdxl.Cli --version "$version" --tool-path "$work/tool" --add-source "$feed" >/dev/null) || fail "dotnet tool install Sdxl.Cli"
tool_version="$("$work/tool/sdxl" --version)" || fail "sdxl --version failed"
grep -q "$version" <<<"$tool_version" || fail "sdxl --version does not print $version"
TMPDIR="$work/run-temp/" "$work/tool/sdxl" demo --steps 2 --output "$work/tool-demo.png" || fail "the installed sdxl demo failed"
expect_png "$work/tool-demo.png"

step "creating a console app that uses the package"
new_app SmokeApp "Sdxl.Net@$version" "Sdxl.Net.Runtime.Cpu@$version"
app="$work/SmokeApp"
cp "$repo/samples/QuickStart/Program.cs" "$app/"

step "building and running the quick start"
(cd "$app" && dotnet build -c Release -nologo -v q) || fail "the quick start does not build against the package"
grep -q "\"Sdxl.Net/$version\"" "$app/obj/project.assets.json" || fail "the app did not resolve Sdxl.Net $version from the package feed"
png="$app/quickstart.png"
(cd "$app" && TMPDIR="$work/run-temp/" dotnet run -c Release --no-build -- "" "$png") || fail "the quick start failed"
expect_png "$png"
step "OK: packages $version build, and the packed Sdxl.Net runs the README quick start"
