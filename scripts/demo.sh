#!/usr/bin/env bash
# The main job in one go, no server needed: build kando, push a generated dump into a
# local repository twice (the second push deduplicates), pull it back and compare.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release
KANDO=${CARGO_TARGET_DIR:-target}/release/kando
WORK=$(mktemp -d /tmp/kando-demo.XXXXXX)
PROFILE="{\"Location\":{\"type\":\"local\",\"path\":\"$WORK/repo\"}}"

# ~200 MB of dump-like text: rows with ids, hashes and JSON.
python3 - "$WORK/dump.sql" <<'PY'
import hashlib, sys
with open(sys.argv[1], "w") as f:
    for i in range(2_000_000):
        h = hashlib.md5(str(i).encode()).hexdigest()
        f.write(f'{i}\t{h}\t{{"user": "u{i % 9973}", "score": {i * 7 % 1000}}}\n')
PY

run() { echo "+ $*" >&2; "$@"; }
run "$KANDO" location push --profile "$PROFILE" --path demo/dump.sql - < "$WORK/dump.sql"
run "$KANDO" location push --profile "$PROFILE" --path demo/dump.sql --output-name kopiaOutput - < "$WORK/dump.sql"
run "$KANDO" location pull --profile "$PROFILE" --path demo/dump.sql - > "$WORK/restored.sql"
run cmp "$WORK/dump.sql" "$WORK/restored.sql"
run "$KANDO" repo list --profile "$PROFILE"
echo "round trip OK: $(du -sb "$WORK/dump.sql" | cut -f1) bytes in, repository $(du -sb "$WORK/repo" | cut -f1) bytes ($WORK)"
