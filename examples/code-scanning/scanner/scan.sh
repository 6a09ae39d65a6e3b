#!/bin/sh
# The code scanner: looks through $SCAN_PATH for leaked secrets and TODO markers and prints
# its report as one JSON line (the last line of stdout is the task's result). Runs on busybox
# alone, in an image built FROM scratch (see build.sh). Findings name the file and line and
# the rule, never the matched text: a report must not spread the secret it found.
set -eu

root="${SCAN_PATH:?SCAN_PATH names the folder to scan}"
if [ ! -d "$root" ]; then
  echo "scan: no such folder: $root" >&2
  exit 2
fi
echo "scanning $root"

# rule|severity|kind|extended regular expression
rules='aws-access-key-id|high|secret|AKIA[0-9A-Z]{16}
private-key|high|secret|-----BEGIN ([A-Z]+ )?PRIVATE KEY-----
todo-marker|low|todo|(TODO|FIXME)'

json_escape() {
  printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

findings=""
count=0
secrets=0
todos=0
hits=$(mktemp)
while IFS='|' read -r rule severity kind pattern; do
  # -I skips binary files; -n gives the line number.
  grep -rnIE -e "$pattern" "$root" 2>/dev/null | cut -d: -f1,2 | sort > "$hits" || true
  while IFS= read -r hit; do
    [ -n "$hit" ] || continue
    file="${hit%:*}"
    line="${hit##*:}"
    file="${file#"$root"/}"
    echo "finding: $rule in $file:$line"
    entry="{\"rule\": \"$rule\", \"severity\": \"$severity\", \"file\": \"$(json_escape "$file")\", \"line\": $line}"
    findings="${findings:+$findings, }$entry"
    count=$((count + 1))
    if [ "$kind" = secret ]; then secrets=$((secrets + 1)); else todos=$((todos + 1)); fi
  done < "$hits"
done <<RULES
$rules
RULES
rm -f "$hits"

files=$(find "$root" -type f | wc -l)
echo "{\"path\": \"$(json_escape "$root")\", \"files_scanned\": $files, \"count\": $count, \"secrets\": $secrets, \"todos\": $todos, \"findings\": [$findings]}"
