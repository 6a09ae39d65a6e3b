#!/usr/bin/env bash
# Sends a GitHub pull_request webhook payload to Stepyard as GitHub would: signed with
# HMAC-SHA256 of the body in X-Hub-Signature-256.
# Usage: STEPYARD_GITHUB_WEBHOOK_SECRET=... ./send-pr-event.sh events/pull_request.opened.json
set -euo pipefail
file="${1:?usage: send-pr-event.sh PAYLOAD.json}"
secret="${STEPYARD_GITHUB_WEBHOOK_SECRET:?set STEPYARD_GITHUB_WEBHOOK_SECRET as given to stepyard serve --github-webhook-secret}"
endpoint="${STEPYARD_ENDPOINT:-http://127.0.0.1:8080}"
signature="$(openssl dgst -sha256 -hmac "$secret" < "$file" | sed 's/^.*= //')"
curl -sS -X POST "$endpoint/v1/webhooks/github/default" \
  -H 'Content-Type: application/json' \
  -H 'X-GitHub-Event: pull_request' \
  -H "X-GitHub-Delivery: $(cat /proc/sys/kernel/random/uuid)" \
  -H "X-Hub-Signature-256: sha256=$signature" \
  --data-binary @"$file"
echo
