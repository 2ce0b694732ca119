#!/usr/bin/env bash
# Daily API ingestion: every day after each cursor up to yesterday, weather then transit.
#
# Idempotent and resumable: a re-run (or a run after a missed day or a crash) fetches only what the
# cursors say is missing, and rows whose content did not change are never rewritten.
#
# crontab (06:15 UTC every day; logs next to the state directory):
#   15 6 * * * /path/to/dotjoin/scripts/cron/ingest-daily.sh >> /path/to/dotjoin/.dotjoin/ingest-cron.log 2>&1
#
# Environment: DOTJOIN_PROFILE (local|stack), DOTJOIN__INGEST__BASE_URL (e.g. the local
# `dotjoin sources serve`; unset = the real public APIs), any other DOTJOIN__* key.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DOTJOIN="${DOTJOIN:-$REPO/.venv/bin/dotjoin}"
LOCK="${DOTJOIN_INGEST_LOCK:-$REPO/.dotjoin/ingest-daily.lock}"
mkdir -p "$(dirname "$LOCK")"
cd "$REPO"

# One run at a time: a slow day must not overlap the next one.
exec 9>"$LOCK"
if ! flock -n 9; then
    echo "$(date -u +%FT%TZ) ingest-daily: another run holds $LOCK; skipping"
    exit 0
fi

status=0
for source in weather transit; do
    echo "$(date -u +%FT%TZ) ingest-daily: $source"
    if ! "$DOTJOIN" --quiet ingest "$source" --output json > "$REPO/.dotjoin/ingest-$source-last.json"; then
        echo "$(date -u +%FT%TZ) ingest-daily: $source FAILED (see dotjoin runs list; ingest_errors)" >&2
        status=1
    fi
done
exit "$status"
