#!/usr/bin/env bash
# The README's example session against a running service (`make run` in another shell): a
# clinician key, a phantom NCCT generated and uploaded, a job submitted, waited for and its
# result downloaded. It stops at the first refusal with the service's own message (code and
# what to do next) and exits 1; it never loops on an error.
#   DC_URL (default http://127.0.0.1:8000), DEMO_DIR (var/demo), DEMO_USE_CASE (aaa-cta),
#   DEMO_TIMEOUT_S (600); the key is created in the service's database (the same DC_* settings).
set -euo pipefail
BASE=${DC_URL:-http://127.0.0.1:8000}
OUT=${DEMO_DIR:-var/demo}
USE_CASE=${DEMO_USE_CASE:-aaa-cta}
TIMEOUT_S=${DEMO_TIMEOUT_S:-600}
BIN=$(dirname "$0")/../.venv/bin

stop() { echo "demo: stopped: $*" >&2; exit 1; }
call() {  # curl that fails on any HTTP error, with the service's problem detail
  local body
  body=$(curl -sS --fail-with-body -H "X-API-Key: $KEY" "$@") || stop "$body"
  printf '%s' "$body"
}
field() {  # one value of the JSON on standard input, by its keys (list indexes as numbers)
  "$BIN/python" -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1:]:
    value = value[int(key)] if isinstance(value, list) else value[key]
print(value)' "$@"
}

KEY=$("$BIN/digital-contrast" keys create --role clinician --name demo | tail -n 1)
"$BIN/digital-contrast" phantom generate --n 1 --seed 5000 --out "$OUT" >/dev/null
"$BIN/python" -m zipfile -c "$OUT/ncct.zip" "$OUT/PH005000/ncct/"
UPLOADED=$(call -H "Content-Type: application/zip" --data-binary "@$OUT/ncct.zip" \
  "$BASE/v1/uploads")  # a refusal stops here, before anything parses the answer
SERIES=$(printf '%s' "$UPLOADED" | field series_uids 0)
echo "demo: uploaded series $SERIES"
SUBMITTED=$(call -H "Content-Type: application/json" \
  -d "{\"series_uid\": \"$SERIES\", \"use_case\": \"$USE_CASE\"}" "$BASE/v1/jobs")
JOB=$(printf '%s' "$SUBMITTED" | field id)
echo "demo: job $JOB submitted"
deadline=$((SECONDS + TIMEOUT_S))
while :; do
  JOB_JSON=$(call "$BASE/v1/jobs/$JOB")
  STATE=$(printf '%s' "$JOB_JSON" | field state)
  case $STATE in
    succeeded) break ;;
    rejected|failed) stop "job $JOB $STATE: $(printf '%s' "$JOB_JSON" | field error)" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || stop "job $JOB still $STATE after $TIMEOUT_S s"
  sleep 2
done
curl -sS --fail-with-body -H "X-API-Key: $KEY" -o "$OUT/result.zip" \
  "$BASE/v1/jobs/$JOB/result.zip" || stop "$(cat "$OUT/result.zip")"
echo "demo: job $JOB succeeded; the labelled synthetic series and result.json: $OUT/result.zip"
