#!/usr/bin/env bash
# What `make test` needs beyond Go and a C compiler, command by command with
# the Debian package that provides it. As root on a Debian-like machine the
# missing packages are installed with apt-get; elsewhere (or with
# NSH_DEPS=check) they are named and the tests that need them skip.
set -euo pipefail

# command  package
want='
ip        iproute2
ping      iputils-ping
setpriv   util-linux
unshare   util-linux
ipcmk     util-linux
ps        procps
pgrep     procps
flock     util-linux
setsid    util-linux
mount     mount
busybox   busybox-static
newuidmap uidmap
musl-gcc  musl-tools
gcc       gcc
dot       graphviz
tcpdump   tcpdump
xmllint   libxml2-utils
'
missing=() pkgs=()
while read -r cmd pkg; do
  [ -n "$cmd" ] || continue
  command -v "$cmd" >/dev/null 2>&1 && continue
  missing+=("$cmd")
  case " ${pkgs[*]-} " in *" $pkg "*) ;; *) pkgs+=("$pkg") ;; esac
done <<<"$want"

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "deps: no go command: install Go 1.24 or later (https://go.dev/dl/) and put it on PATH" >&2
  exit 1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "${NSH_DEPS:-}" != check ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "deps: installing ${pkgs[*]} (for ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
  exit 0
fi
echo "deps: missing ${missing[*]}; on Debian or Ubuntu: apt-get install ${pkgs[*]}" >&2
echo "deps: the tests that need them skip, naming the command" >&2
