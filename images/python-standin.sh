#!/usr/bin/env bash
# Makes sure buildah has python:3.11-slim, the Dockerfile's base: already there, else pulled, else (where Docker's
# registry cannot be reached) a stand-in built from Debian bookworm, which is what python:3.11-slim itself is based on.
# The stand-in has Debian's Python 3.11 (3.11.2) with python, python3 and pip in /usr/local/bin, where the official
# image has them: /usr/local is a venv, so the Dockerfile's `pip install` lines install into
# /usr/local/lib/python3.11/site-packages and put `ft` in /usr/local/bin, unchanged. It is labelled
# ftbot.standin=true, so `buildah inspect` tells it from the real image.
#
# Needs buildah, and for the stand-in mmdebstrap (Debian/Ubuntu, as root: apt-get install buildah mmdebstrap).
# The Debian tree is cached in ${XDG_CACHE_HOME:-~/.cache}/ftbot, so only the first stand-in runs mmdebstrap.
# Exit 2: a tool it needs is missing (the line says which).
set -euo pipefail

BASE=docker.io/library/python:3.11-slim
# The cache's name changes with what goes into it (the packages, the venv), so an old tree is never reused.
TREE=${XDG_CACHE_HOME:-$HOME/.cache}/ftbot/bookworm-python3.11-v1.tar

if ! command -v buildah >/dev/null; then
	echo "buildah not found: install it (Debian/Ubuntu, as root: apt-get install buildah mmdebstrap)" >&2
	exit 2
fi
if buildah inspect --type image "$BASE" >/dev/null 2>&1; then
	standin=$(buildah inspect --type image --format '{{index .OCIv1.Config.Labels "ftbot.standin"}}' "$BASE" 2>/dev/null || true)
	echo "$BASE: present${standin:+ (the stand-in from Debian bookworm)}"
	exit 0
fi
# A registry in reach answers well within this timeout; one out of reach fails at once (DNS) or by it.
if timeout 120 buildah pull --quiet "$BASE" >/dev/null 2>&1; then
	echo "$BASE: pulled"
	exit 0
fi
if [ ! -s "$TREE" ]; then
	if ! command -v mmdebstrap >/dev/null; then
		echo "$BASE cannot be pulled and mmdebstrap, which builds its stand-in, is not installed: apt-get install mmdebstrap" >&2
		exit 2
	fi
	mkdir -p "$(dirname "$TREE")"
	echo "$BASE cannot be pulled: building a stand-in from Debian bookworm (mmdebstrap, once; cached in $TREE)"
	# As debian:bookworm-slim, which python:3.11-slim is built on: minbase (apt, dpkg, the essential set), merged
	# /usr by mmdebstrap's hook (the usrmerge package would bring perl), no docs, man pages or translations.
	# The venv's pip and setuptools come from Debian's python3.11-venv (ensurepip). mmdebstrap empties apt's lists.
	mmdebstrap --quiet --variant=minbase --format=tar --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--include=python3.11,python3.11-venv,ca-certificates,netbase,tzdata \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*' \
		--customize-hook='chroot "$1" python3.11 -m venv /usr/local' \
		--customize-hook='find "$1/usr" -name __pycache__ -prune -exec rm -rf {} +' \
		bookworm "$TREE.part" >"$TREE.log" 2>&1 || { tail -20 "$TREE.log" >&2; exit 1; }
	mv "$TREE.part" "$TREE"
fi
container=$(buildah from scratch)
trap 'buildah rm "$container" >/dev/null' EXIT
buildah add --quiet "$container" "$TREE" / >/dev/null
# The official image's settings that the Dockerfile relies on: /usr/local/bin first on PATH, a UTF-8 locale.
buildah config --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
	--cmd python3 --label ftbot.standin=true \
	--label "org.opencontainers.image.description=stand-in for python:3.11-slim: Debian bookworm's Python 3.11, made by images/python-standin.sh" \
	"$container"
buildah commit --quiet "$container" "$BASE" >/dev/null
echo "$BASE: the stand-in from Debian bookworm, built"
