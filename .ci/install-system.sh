#!/usr/bin/env bash
# System packages behind `make services` (PostgreSQL, Redis, Prometheus + Pushgateway, Java + Maven for Kafka
# and Spark) and the web tests (Chromium), on Debian/Ubuntu. Idempotent and quiet: apt runs only when something is missing.
# Usage: .ci/install-system.sh        (as root, or with sudo available)
set -euo pipefail

need=()
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in postgresql redis-server chromium prometheus prometheus-pushgateway; do
  installed "$pkg" || need+=("$pkg")
done
command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v runuser >/dev/null 2>&1 || need+=(util-linux)
command -v ss >/dev/null 2>&1 || need+=(iproute2)

if ((${#need[@]})); then
  sudo=""
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
  echo "install-system: apt-get install ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Kafka 4.x brokers need Java 17 or newer.
java_major=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
if [[ -z "$java_major" || "${java_major%%.*}" -lt 17 ]]; then
  echo "install-system: Java 17+ is required, found '${java_major:-none}' (apt-get install openjdk-17-jre-headless)" >&2
  exit 1
fi
command -v mvn >/dev/null || { echo "install-system: mvn missing (apt-get install maven)" >&2; exit 1; }
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || { echo "install-system: PostgreSQL server binaries missing (apt-get install postgresql)" >&2; exit 1; }
command -v redis-server >/dev/null || { echo "install-system: redis-server missing" >&2; exit 1; }
command -v prometheus >/dev/null || { echo "install-system: prometheus missing" >&2; exit 1; }
echo "install-system: ok (java ${java_major}, $(mvn -v 2>/dev/null | head -1 | sed 's/\x1b\[[0-9;]*m//g'))"
