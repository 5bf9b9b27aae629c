# Shared by the scripts/build-*.sh scripts: build a Go program once into the project's cache
# (next to the control plane's binaries) and print its path; later runs reuse it.
# Source this file; each function prints the binary's path on stdout.

CACHE_ROOT="${DJL_OPERATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/djl-operator}"

# go_build_source SRC NAME [OVERRIDE]
#   Builds the program in the folder SRC (its own go.mod/go.sum), cached under a key that covers
#   every input of the build: the sources, go.mod/go.sum and the Go version. OVERRIDE, when set
#   to an executable, is used instead.
go_build_source() {
  local src=$1 name=$2 override=${3:-}
  if [[ -n "$override" && -x "$override" ]]; then
    echo "$override"
    return
  fi
  local key bin
  key=$({ go version; find "$src" -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 | sort -z | xargs -0 sha256sum; } | sha256sum | cut -c1-16)
  bin="$CACHE_ROOT/$name/$key/$name"
  if [[ ! -x "$bin" ]]; then
    mkdir -p "$(dirname "$bin")"
    echo "[build-$name] building $src (modules from the Go module proxy; a cold build takes a minute or two)" >&2
    # -mod=readonly: the committed go.mod/go.sum are the whole truth; a stale go.sum fails the build.
    (cd "$src" && CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false" go build -trimpath -o "$bin.tmp" .)
    mv "$bin.tmp" "$bin"
  fi
  echo "$bin"
}

# go_install_module NAME PACKAGE VERSION [OVERRIDE] [LDFLAGS]
#   `go install PACKAGE@VERSION` from the module proxy (no checkout, no go.mod of ours) into
#   $CACHE_ROOT/NAME/VERSION/NAME. OVERRIDE, when set to an executable, is used instead.
go_install_module() {
  local name=$1 package=$2 version=$3 override=${4:-} ldflags=${5:-"-s -w"}
  if [[ -n "$override" && -x "$override" ]]; then
    echo "$override"
    return
  fi
  local dir="$CACHE_ROOT/$name/$version"
  if [[ ! -x "$dir/$name" ]]; then
    echo "[build-$name] building $package@$version" >&2
    mkdir -p "$dir"
    GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 GOBIN="$dir/.tmp" \
      go install -trimpath -ldflags "$ldflags" "$package@$version"
    mv "$dir/.tmp/$name" "$dir/$name"
    rmdir "$dir/.tmp"
  fi
  echo "$dir/$name"
}
