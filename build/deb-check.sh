#!/usr/bin/env bash
# Checks the Debian package as a user meets it: bash build/deb-check.sh
# DEB. lintian finds no error; dpkg -i installs it; the binary runs, its
# man pages and bash completion are found; dpkg -r removes it and leaves
# nothing behind. Needs root, lintian, man-db and bash-completion (CI
# installs them). It removes a portkit package installed before it.
set -euo pipefail
deb=${1:?usage: bash build/deb-check.sh DEB}
fail() { echo "build/deb-check.sh: $*" >&2; exit 1; }

lint=$(lintian --fail-on error "$deb" 2>&1) || fail "lintian: errors in $deb:
$lint"

# What the package holds, to check it is all gone after dpkg -r.
mapfile -t files < <(dpkg-deb -c "$deb" | awk '{print substr($6, 2)}' | grep -v '/$')
dpkg -i "$deb" >/dev/null
trap 'dpkg -r portkit >/dev/null 2>&1 || true' EXIT

portkit version | grep -q '^portkit ' || fail "portkit version: $(portkit version 2>&1)"
version=$(dpkg-deb -f "$deb" Version)
portkit version --json | grep -q "\"version\": \"$version\"" || fail "portkit version --json does not say $version"
man -w portkit-scan >/dev/null || fail "man -w portkit-scan: no page"
man -w portkit >/dev/null || fail "man -w portkit: no page"

# Bash completes `portkit sc<TAB>` to scan: the completion is loaded on
# demand from /usr/share/bash-completion/completions, as in a login shell.
got=$(bash -c '
	source /usr/share/bash-completion/bash_completion
	__load_completion portkit || exit 1
	complete -p portkit >/dev/null || exit 1
	fn=$(complete -p portkit | sed -n "s/.*-F \([^ ]*\).*/\1/p")
	COMP_WORDS=(portkit sc); COMP_CWORD=1; COMP_LINE="portkit sc"; COMP_POINT=${#COMP_LINE}
	"$fn" portkit sc portkit 2>/dev/null
	printf "%s\n" "${COMPREPLY[@]}"
')
grep -qx 'scan' <<<"$got" || fail "bash completion of 'portkit sc': got [$got], want scan"

for unit in /lib/systemd/system/portkit-*.service; do
	[ -f "$unit" ] || fail "no systemd unit installed"
done
[ -d /etc/portkit ] || fail "no /etc/portkit"

dpkg -r portkit >/dev/null
trap - EXIT
left=()
for f in "${files[@]}"; do
	[ -e "$f" ] && left+=("$f")
done
[ -e /etc/portkit ] && left+=(/etc/portkit)
if dpkg -s portkit >/dev/null 2>&1 && dpkg -s portkit | grep -q '^Status: install'; then
	left+=("(dpkg still lists portkit installed)")
fi
[ ${#left[@]} -eq 0 ] || fail "left after dpkg -r: ${left[*]}"
echo "deb-check: $deb: lintian clean, installs, runs ($version), man and completion found, removes cleanly"
