#!/bin/sh
# A cron job: embeds FILE... and upserts the result into the items table
# (made by load.sh or the schema files), so the table follows the files as
# they change. Rows whose id is new are inserted; rows whose embedding, url
# or model changed are updated; the rest are left alone. Ids that left the
# files stay in the table (see the DELETE below to drop them).
#
#   */30 * * * *  cd /srv/docs && VECTOR=pgvector \
#                 /path/to/examples/postgres/incremental.sh sections.jsonl
#
# Environment: as load.sh, and STATE_DIR (default $HOME/.cache/embedpipe)
# for the lock and the checkpoint journal.
#
# Incremental cost: with its --checkpoint journal each run pays only for
# texts it has not embedded before, and writes the rest from the journal;
# --compact keeps the journal to the texts the files still hold. The run's
# account goes to $STATE_DIR/items.stats.json (embedpipe --stats).
set -eu
embedpipe=${EMBEDPIPE:-embedpipe}
vector=${VECTOR:-pgvector}
dims=${DIMS:-1536}
state=${STATE_DIR:-$HOME/.cache/embedpipe}
[ $# -gt 0 ] || { echo "usage: incremental.sh FILE..." >&2; exit 1; }
mkdir -p "$state"

# One run at a time: cron starts the next whatever the last one is doing.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$state/items.lock"
  flock -n 9 || { echo "incremental.sh: a run is in progress" >&2; exit 0; }
fi

export PGCLIENTENCODING=UTF8
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
set +e
"$embedpipe" --checkpoint "$state/items.journal" --compact \
  --stats "$state/items.stats.json" --dimensions "$dims" --format tsv \
  --vector "$vector" --carry meta.url \
  --columns id,embedding,meta.url,tokens,model \
  --errors "$work/errors.jsonl" "$@" > "$work/items.tsv"
status=$?
set -e
case $status in
  0) ;;
  2) echo "incremental.sh: rejected records:" >&2; cat "$work/errors.jsonl" >&2 ;;
  *) exit "$status" ;;
esac

# One transaction: readers see the old rows or the new ones. The file is
# loaded into a temporary table, then merged; a later line with the same id
# wins over an earlier one (ON CONFLICT may touch a row only once).
psql -X -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
CREATE TEMP TABLE items_new (LIKE items INCLUDING DEFAULTS, seq bigserial)
  ON COMMIT DROP;
\\copy items_new(id, embedding, url, tokens, model) FROM '$work/items.tsv'
INSERT INTO items AS i (id, embedding, url, tokens, model)
  SELECT DISTINCT ON (id) id, embedding, url, tokens, model
  FROM items_new ORDER BY id, seq DESC
ON CONFLICT (id) DO UPDATE
  SET embedding = excluded.embedding, url = excluded.url,
      tokens = excluded.tokens, model = excluded.model, loaded_at = now()
  WHERE (i.embedding, i.url, i.model) IS DISTINCT FROM
        (excluded.embedding, excluded.url, excluded.model);
-- To mirror the files exactly, also drop the ids they no longer have (a
-- record rejected this run would then be dropped too):
-- DELETE FROM items WHERE id NOT IN (SELECT id FROM items_new);
COMMIT;
SQL
echo "incremental.sh: merged $(wc -l < "$work/items.tsv") items" >&2
exit "$status"  # 2 when some records were rejected
