#!/usr/bin/env bash
# Build a Python base image from Debian packages, for machines that reach no
# container registry: the equivalent of the usual Python slim image (Debian
# bookworm, python3.11 with venv, ca-certificates), made with debootstrap and
# loaded with `docker import`. Then build the tristore image on it:
#
#   deploy/base-image.sh                      # tags tristore-base:bookworm
#   docker build -f deploy/Dockerfile --build-arg BASE_IMAGE=tristore-base:bookworm -t tristore:latest .
#
# Needs root (debootstrap chroots), debootstrap and a running Docker daemon.
#
# The Debian mirror is the one this machine's apt already uses (the first
# `bookworm` source in /etc/apt/sources.list.d/*.sources or
# /etc/apt/sources.list), read at run time; DEBIAN_MIRROR=URL overrides it.
#
# Environment:
#   BASE_TAG       image tag to create          (default tristore-base:bookworm)
#   SUITE          Debian suite                 (default bookworm)
#   DEBIAN_MIRROR  mirror URL                   (default: from apt's sources)
#   KEEP_ROOTFS=1  keep the debootstrap tree (printed) instead of deleting it
set -euo pipefail

BASE_TAG=${BASE_TAG:-tristore-base:bookworm}
SUITE=${SUITE:-bookworm}
PACKAGES=python3.11,python3-venv,ca-certificates

die() {
  echo "base-image: $*" >&2
  exit 1
}
say() { echo "base-image: $*" >&2; }

[[ $(id -u) -eq 0 ]] || die "run as root: debootstrap needs to chroot"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"
command -v docker >/dev/null || die "docker is missing (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "no Docker daemon answers (start dockerd, or check DOCKER_HOST)"

# The mirror apt uses for $SUITE: deb822 files first ("URIs:" + "Suites:"
# stanzas), then the one-line format ("deb [opts] URI SUITE COMPONENTS").
apt_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -e $f ]] || continue
    awk -v suite="$SUITE" '
      function flush() {
        if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") {
          print uri; found = 1; exit
        }
        types = ""; suites = ""; uri = ""
      }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "types:"  { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:"   { uri = $2 }
      END { if (!found) flush() }
    ' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -e $f ]] || continue
    # Drop an [options] block, then print the URI of a `deb` line for the suite.
    sed -E 's/\[[^]]*\]//' "$f" | awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }'
  done
}

MIRROR=${DEBIAN_MIRROR:-$(apt_mirror | head -n1)}
[[ -n $MIRROR ]] || die "found no '$SUITE' source in apt's configuration; set DEBIAN_MIRROR=URL"

ROOTFS=$(mktemp -d /tmp/tristore-rootfs.XXXXXX)
cleanup() {
  if [[ ${KEEP_ROOTFS:-0} == 1 ]]; then
    say "kept the root file system in $ROOTFS"
  else
    rm -rf --one-file-system "$ROOTFS"
  fi
}
trap cleanup EXIT

say "debootstrap $SUITE (minbase + $PACKAGES) into $ROOTFS from apt's configured mirror"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >&2 ||
  die "debootstrap failed (see $ROOTFS/debootstrap/debootstrap.log; KEEP_ROOTFS=1 keeps it)"

say "trimming the image (apt lists and caches, docs, man pages, locales)"
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/*
find "$ROOTFS"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} +
# Bytecode is rebuilt on demand; the slim images ship none either.
find "$ROOTFS"/usr/lib/python3* -name __pycache__ -type d -prune -exec rm -rf {} +
# `python` as in the slim images, and a resolv.conf Docker replaces at run time.
ln -sf python3 "$ROOTFS"/usr/bin/python
: >"$ROOTFS"/etc/resolv.conf

say "importing as $BASE_TAG"
tar --numeric-owner -C "$ROOTFS" -c . |
  docker import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "tristore base: Debian $SUITE, python3.11, python3-venv, ca-certificates" \
    - "$BASE_TAG" >/dev/null

docker run --rm "$BASE_TAG" python3 -c 'import ssl, sys, venv; print(sys.version.split()[0])' >/dev/null ||
  die "the imported image $BASE_TAG does not run python3"
say "built $BASE_TAG ($(docker image inspect -f '{{.Size}}' "$BASE_TAG" | awk '{printf "%.0f MB", $1 / 1e6}'))"
echo "$BASE_TAG"
