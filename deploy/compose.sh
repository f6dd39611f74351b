#!/usr/bin/env bash
# The docker compose deployment in one command, offline or not (`make
# compose-up`, `make compose-down`):
#
#   deploy/compose.sh up      # images, both clusters, wait healthy, print exports
#   deploy/compose.sh down    # stop and remove the containers (volumes kept)
#   deploy/compose.sh down -v # ... and the volumes (every object is gone)
#
# `up` builds what is missing and nothing more:
#   1. the base image: $BASE_IMAGE if set; else python:3.11-slim if it is here
#      or can be pulled; else tristore-base:bookworm. A tristore-base:* image
#      that is missing is built from Debian packages by deploy/base-image.sh
#      (root and debootstrap);
#   2. a wheelhouse of this checkout and its dependencies (pip wheel);
#   3. the tristore image ($TRISTORE_IMAGE, default tristore:latest) and the
#      Prometheus image from Debian's package ($PROMETHEUS_IMAGE, default
#      tristore-prometheus:latest);
#   4. `compose up -d` of every service whose image is here (Grafana only when
#      its image already is: nothing else is pulled), then waits until every
#      tristore container's healthcheck passes (at most $HEALTH_TIMEOUT_S, 300).
# It ends with the export lines a client needs, as `tristore dev up` does:
# the stack runs TLS everywhere and checks every request's signature. The
# one-shot `init` container makes the CA, the certificates, the master keys
# and the root key once, in docker volumes (kept across `up`s, removed by
# `down -v`); `up` copies the CA's certificate to deploy/.compose/PROJECT/ca.crt
# (gitignored; what clients verify the nodes against) and unseals the root
# key inside east-a1 (`tristore admin root-credentials`) to print it.
#
# Environment: COMPOSE_PROJECT_NAME (default tristore), BASE_IMAGE,
# TRISTORE_IMAGE, PROMETHEUS_IMAGE, GRAFANA_IMAGE, HEALTH_TIMEOUT_S,
# PYTHON (the interpreter that builds the wheels; default .venv/bin/python,
# else python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "${here}")
compose_file="${here}/docker-compose.yml"
export COMPOSE_PROJECT_NAME=${COMPOSE_PROJECT_NAME:-tristore}
export TRISTORE_IMAGE=${TRISTORE_IMAGE:-tristore:latest}
export PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-tristore-prometheus:latest}
export GRAFANA_IMAGE=${GRAFANA_IMAGE:-grafana/grafana:11.1.0}
health_timeout=${HEALTH_TIMEOUT_S:-300}
# The client side of the stack's secrets: the CA's certificate.
client_dir="${here}/.compose/${COMPOSE_PROJECT_NAME}"
# Host ports the compose file publishes (a1 a2 b1 b2 c1 c2): gRPC and S3 HTTP.
east_grpc=$(printf '127.0.0.1:%s,' 7101 7102 7103 7104 7105 7106)
west_grpc=$(printf '127.0.0.1:%s,' 7111 7112 7113 7114 7115 7116)

say() { echo "compose: $*" >&2; }
die() {
  say "$*"
  exit 1
}

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -f "${compose_file}" "$@"
  elif command -v docker-compose >/dev/null; then
    docker-compose -f "${compose_file}" "$@"
  else
    die "neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker.io docker-compose)"
  fi
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

base_image() {
  local want=${BASE_IMAGE:-}
  if [[ -z ${want} ]]; then
    if have_image python:3.11-slim || timeout 120 docker pull -q python:3.11-slim >/dev/null 2>&1; then
      want=python:3.11-slim
    else
      say "no registry answers: the base image comes from Debian packages"
      want=tristore-base:bookworm
    fi
  fi
  if [[ ${want} == tristore-base:* ]] && ! have_image "${want}"; then
    say "building ${want} from Debian packages (deploy/base-image.sh; root and debootstrap)"
    BASE_TAG=${want} bash "${here}/base-image.sh" >&2
  fi
  echo "${want}"
}

# Service name -> its health ("healthy", "starting", "unhealthy", or the
# container's state when it is not running), one per line.
health() {
  local ids
  ids=$(compose ps -q)
  [[ -z ${ids} ]] && return 0
  # shellcheck disable=SC2086 # one argument per container id
  docker inspect --format \
    '{{index .Config.Labels "com.docker.compose.service"}} {{if not .State.Running}}{{.State.Status}}{{else if .State.Health}}{{.State.Health.Status}}{{else}}running{{end}}' \
    ${ids}
}

wait_healthy() {
  local deadline=$((SECONDS + health_timeout)) bad
  while ((SECONDS < deadline)); do
    # tristore services carry a healthcheck; one-shot init containers exit 0.
    bad=$(health | awk '$2 != "healthy" && $2 != "running" && $2 != "exited" {print $1 "=" $2}')
    [[ -z ${bad} ]] && return 0
    sleep 2
  done
  compose logs --tail 20 >&2 || true
  die "not healthy after ${health_timeout}s: ${bad//$'\n'/ }"
}

up() {
  command -v docker >/dev/null || die "the docker CLI is not installed (Debian: apt-get install docker.io)"
  docker info >/dev/null 2>&1 || die "no Docker daemon answers (start dockerd, or check DOCKER_HOST)"
  local base py services name image
  base=$(base_image)
  py=${PYTHON:-}
  if [[ -z ${py} ]]; then
    if [[ -x ${root}/.venv/bin/python ]]; then py=${root}/.venv/bin/python; else py=python3; fi
  fi
  say "wheels of this checkout -> deploy/wheelhouse"
  "${py}" -m pip wheel -q --disable-pip-version-check "${root}" -w "${here}/wheelhouse"
  say "image ${TRISTORE_IMAGE} on ${base}"
  docker build -q -f "${here}/Dockerfile" --build-arg "BASE_IMAGE=${base}" -t "${TRISTORE_IMAGE}" "${here}" >/dev/null
  if [[ ${PROMETHEUS_IMAGE} == tristore-prometheus:* ]]; then
    say "image ${PROMETHEUS_IMAGE} (Debian's prometheus package) on ${base}"
    docker build -q -f "${here}/Dockerfile.prometheus" --build-arg "BASE_IMAGE=${base}" \
      -t "${PROMETHEUS_IMAGE}" "${here}" >/dev/null
  fi
  services=()
  for name in $(compose config --services); do
    case ${name} in
      prometheus) image=${PROMETHEUS_IMAGE} ;;
      grafana) image=${GRAFANA_IMAGE} ;;
      *) image=${TRISTORE_IMAGE} ;;
    esac
    if have_image "${image}"; then services+=("${name}"); else say "skipping ${name}: image ${image} is not here (nothing is pulled)"; fi
  done
  say "starting ${#services[@]} services (project ${COMPOSE_PROJECT_NAME})"
  BASE_IMAGE=${base} compose up -d --no-build "${services[@]}"
  say "waiting for every healthcheck (at most ${health_timeout}s)"
  wait_healthy
  local ca=${client_dir}/ca.crt creds
  mkdir -p "${client_dir}"
  compose exec -T east-a1 cat /etc/tristore/tls/ca.crt >"${ca}.tmp"
  mv "${ca}.tmp" "${ca}"
  # Unsealed in the container and printed below, never written on the host.
  creds=$(compose exec -T east-a1 tristore admin root-credentials --config /etc/tristore/cluster.toml)
  grep -q '^export TRISTORE_SECRET_ACCESS_KEY=' <<<"${creds}" || die "no root credentials from east-a1"
  cat <<EOF
# tristore compose stack "${COMPOSE_PROJECT_NAME}" is up: clusters east and west,
# replicating to each other. TLS on every port (clients verify the nodes
# against the stack's CA) and every request signed; the root key serves both
# clusters. east (for west: TRISTORE_ENDPOINT=${west_grpc%,}
# and AWS_ENDPOINT_URL=https://127.0.0.1:7311):
export TRISTORE_ENDPOINT=${east_grpc%,}
export TRISTORE_CA_BUNDLE=${ca}
$(grep '^export TRISTORE_' <<<"${creds}")
export AWS_ENDPOINT_URL=https://127.0.0.1:7301
$(grep '^export AWS_' <<<"${creds}")
export AWS_DEFAULT_REGION=us-east-1
export AWS_CA_BUNDLE=${ca}
# Prometheus: http://127.0.0.1:9090  Grafana (if its image is here): http://127.0.0.1:3000
# Stop: make compose-down (data and keys kept in volumes; make compose-down ARGS=-v removes them)
EOF
}

down() {
  compose down --remove-orphans "$@"
  local arg
  for arg in "$@"; do
    # The volumes are gone, and the CA with them: its copy goes too.
    if [[ ${arg} == -v || ${arg} == --volumes ]]; then rm -rf "${client_dir}"; fi
  done
}

case ${1:-} in
  up) up ;;
  down)
    shift
    down "$@"
    ;;
  *) die "usage: $0 up | down [-v]" ;;
esac
