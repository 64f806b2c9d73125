#!/usr/bin/env bash
# Packs Sdxl.Net and Sdxl.Net.Extensions.AI, checks the packages' contents, then builds a fresh console app against
# the packed Sdxl.Net (not the project) with the README quick start (samples/QuickStart/Program.cs) and checks that it
# writes a PNG. The model is the tiny random-weight one QuickStart writes when given no folder.
#
#   eng/pack-smoke-test.sh [artifacts-dir]     (packages are kept there when given; otherwise in a temp folder)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sdxl-pack-smoke.XXXXXX")"
feed="${1:-$work/feed}"
# A unique prerelease version, so the global NuGet cache never serves a stale package of an earlier run.
base_version="$(dotnet msbuild "$repo/src/Sdxl.Net/Sdxl.Net.csproj" -getProperty:Version -nologo)"
version="$base_version-smoke.$(date +%Y%m%d%H%M%S).$$"
cache="${NUGET_PACKAGES:-$HOME/.nuget/packages}"

cleanup() {
  rm -rf "$work" "$cache/sdxl.net/$version" "$cache/sdxl.net.extensions.ai/$version"
}
trap cleanup EXIT

fail() { echo "pack-smoke-test: FAIL: $*" >&2; exit 1; }
step() { echo "pack-smoke-test: $*"; }

step "packing $version into $feed"
mkdir -p "$feed"
for project in src/Sdxl.Net/Sdxl.Net.csproj src/Sdxl.Net.Extensions.AI/Sdxl.Net.Extensions.AI.csproj; do
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

step "creating a console app that uses the package"
app="$work/app"
mkdir -p "$app"
cat >"$app/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
</configuration>
XML
# The app lives outside the repository, so none of its Directory.*.props apply: it sees what a user sees.
(cd "$app" && dotnet new console -n SmokeApp -o . --framework net10.0 --no-restore >/dev/null) || fail "dotnet new console"
(cd "$app" && dotnet add package Sdxl.Net --version "$version" --no-restore >/dev/null) || fail "dotnet add package Sdxl.Net"
# The quick start writes its demo model with Sdxl.Net.Synthetic (a repository-only helper that does not depend on Sdxl.Net).
(cd "$app" && dotnet add reference "$repo/src/Sdxl.Net.Synthetic/Sdxl.Net.Synthetic.csproj" >/dev/null) || fail "dotnet add reference"
cp "$repo/samples/QuickStart/Program.cs" "$repo/samples/QuickStart/DemoModel.cs" "$app/"

step "building and running the quick start"
(cd "$app" && dotnet build -c Release -nologo -v q) || fail "the quick start does not build against the package"
grep -q "\"Sdxl.Net/$version\"" "$app/obj/project.assets.json" || fail "the app did not resolve Sdxl.Net $version from the package feed"
(cd "$app" && dotnet run -c Release --no-build) || fail "the quick start failed"

png="$app/quickstart.png"
[[ -s "$png" ]] || fail "the quick start wrote no $png"
[[ "$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "$png is not a PNG"
step "OK: packages $version build, and the packed Sdxl.Net runs the README quick start"
