#!/usr/bin/env bash
# Builds portkit's Debian packages: bash build/deb.sh VERSION [ARCH...]
#
# Writes dist/portkit_VERSION_ARCH.deb for amd64 and arm64 (or the ARCHs
# named): the static binary with VERSION, the commit and the build date
# stamped in; man pages; bash, zsh and fish completions; systemd units for
# the daemons (installed, never enabled); an empty /etc/portkit; the
# copyright file and changelog. Needs Go and dpkg-deb; nothing is fetched
# but Go modules.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

usage() { echo "usage: bash build/deb.sh VERSION [amd64|arm64 ...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
version=$1
shift
# Debian's upstream version: a digit first, then alphanumerics and . + ~
if ! [[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]]; then
	echo "build/deb.sh: VERSION $version: want a Debian version such as 1.2.0 or 1.2.0~rc1" >&2
	exit 2
fi
arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64 arm64)
for a in "${arches[@]}"; do
	case $a in amd64 | arm64) ;; *) echo "build/deb.sh: ARCH $a: want amd64 or arm64" >&2; exit 2 ;; esac
done

commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# The commit's date, not the clock's: the same commit builds the same package.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
pkg=github.com/portkit/portkit/internal/cli
ldflags="-s -w -X $pkg.stampedVersion=$version -X $pkg.stampedCommit=$commit -X $pkg.stampedDate=$date"

mkdir -p dist
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The man pages and completions are the same for every architecture: made
# once, by a binary for this machine.
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$work/portkit-host" ./cmd/portkit
go run ./internal/mangen -out "$work/man"

for arch in "${arches[@]}"; do
	root="$work/$arch"
	install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/share/man/man1" \
		"$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
		"$root/usr/share/fish/vendor_completions.d" "$root/lib/systemd/system" \
		"$root/usr/share/doc/portkit" "$root/etc/portkit" "$root/usr/share/lintian/overrides"
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$root/usr/bin/portkit" ./cmd/portkit
	chmod 0755 "$root/usr/bin/portkit"

	for page in "$work"/man/*.1; do
		gzip -9n <"$page" >"$root/usr/share/man/man1/$(basename "$page").gz"
	done
	"$work/portkit-host" completion bash >"$root/usr/share/bash-completion/completions/portkit"
	"$work/portkit-host" completion zsh >"$root/usr/share/zsh/vendor-completions/_portkit"
	"$work/portkit-host" completion fish >"$root/usr/share/fish/vendor_completions.d/portkit.fish"

	# The daemons' units, pointed at the packaged binary; none is enabled.
	for unit in docs/portkit-*.service; do
		sed 's|/usr/local/bin/portkit|/usr/bin/portkit|g' "$unit" >"$root/lib/systemd/system/$(basename "$unit")"
	done

	cp build/debian/copyright "$root/usr/share/doc/portkit/copyright"
	cp build/debian/lintian-overrides "$root/usr/share/lintian/overrides/portkit"
	sed "s/@VERSION@/$version/; s/@DATE@/$(date -u -R -d "@$SOURCE_DATE_EPOCH")/" build/debian/changelog |
		gzip -9n >"$root/usr/share/doc/portkit/changelog.gz"
	find "$root" -path "$root/DEBIAN" -prune -o -type f -exec chmod 0644 {} + -o -type d -exec chmod 0755 {} +
	chmod 0755 "$root/usr/bin/portkit"

	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	sed "s/@VERSION@/$version/; s/@ARCH@/$arch/; s/@SIZE@/$size/" build/debian/control >"$root/DEBIAN/control"
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
	chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
	find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

	out="dist/portkit_${version}_${arch}.deb"
	dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
	echo "$out"
done
