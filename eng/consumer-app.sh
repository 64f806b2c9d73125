# Helpers for the scripts that build fresh console apps against the packed packages (sourced; needs $work, $feed,
# $repo and a fail function).

# new_app NAME PACKAGE@VERSION...: a console app in $work/NAME with the local feed before nuget.org, the given
# packages, and the demo model writer (samples/QuickStart/DemoModel.cs with the repository-only Sdxl.Net.Synthetic,
# which does not depend on Sdxl.Net). It lives outside the repository, so none of its Directory.*.props apply: it sees
# what a user sees.
new_app() {
  local name="$1"; shift
  local app="$work/$name"
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
  (cd "$app" && dotnet new console -n "$name" -o . --framework net10.0 --no-restore >/dev/null) || fail "dotnet new console ($name)"
  local package
  for package in "$@"; do
    (cd "$app" && dotnet add package "${package%@*}" --version "${package#*@}" --no-restore >/dev/null) || fail "$name: dotnet add package $package"
  done
  (cd "$app" && dotnet add reference "$repo/src/Sdxl.Net.Synthetic/Sdxl.Net.Synthetic.csproj" >/dev/null) || fail "$name: dotnet add reference"
  cp "$repo/samples/QuickStart/DemoModel.cs" "$app/"
}

# expect_png FILE: FILE exists and starts with the PNG signature.
expect_png() {
  [[ -s "$1" ]] || fail "$1 was not written"
  [[ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "$1 is not a PNG"
}
