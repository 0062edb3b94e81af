#!/bin/sh
# A cron job: keeps the items table (made by load.sh or the schema files)
# equal to FILE..., sending and loading only what changed. The table is the
# manifest: its key column says what each row was embedded from.
#
#   */30 * * * *  cd /srv/docs && VECTOR=pgvector \
#                 /path/to/examples/postgres/incremental.sh sections.jsonl
#
# Environment: as load.sh, and STATE_DIR (default $HOME/.cache/embedpipe)
# for the lock and the checkpoint journal.
#
# Each run: export (id, key) from the table; embedpipe writes only the
# records whose id is new or whose key changed (--known), and the ids the
# files no longer have (--deleted); then one transaction upserts the one and
# deletes the other. If anything fails before COMMIT the table is as it
# was, and the next run's export redoes exactly what is missing; with the
# --checkpoint journal, texts embedded before cost no request. The run's
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
psql -X -q -v ON_ERROR_STOP=1 \
  -c "\\copy (SELECT id, key FROM items) TO '$work/known.tsv'"

# COPY BINARY: the smallest file and the fastest load; the columns' types
# are the schema's exactly (text, vector or real[], integer).
set +e
"$embedpipe" --checkpoint "$state/items.journal" --compact \
  --known "$work/known.tsv" --deleted "$work/deleted.tsv" \
  --stats "$state/items.stats.json" --dimensions "$dims" --format binary \
  --vector "$vector" --carry meta.url \
  --columns id,key,embedding,meta.url,tokens,model \
  --errors "$work/errors.jsonl" "$@" > "$work/items.bin"
status=$?
set -e
case $status in
  0) ;;
  2) echo "incremental.sh: rejected records:" >&2; cat "$work/errors.jsonl" >&2 ;;
  *) exit "$status" ;;
esac

# One transaction: readers see the old rows or the new ones. embedpipe left
# deleted.tsv empty unless every id was read and the run finished, so a
# rejected or unreadable line never drops a row. The deletions go first: an
# id the table spells otherwise than the input (a column type that rewrites
# it) is then listed gone and written new, and costs a rewrite, not the row.
# The changed rows go through a temporary table, where a later line with the
# same id wins over an earlier one (ON CONFLICT may touch a row only once).
psql -X -q -v ON_ERROR_STOP=1 <<SQL
BEGIN;
CREATE TEMP TABLE items_gone (id text) ON COMMIT DROP;
\\copy items_gone FROM '$work/deleted.tsv'
DELETE FROM items USING items_gone WHERE items.id = items_gone.id;
CREATE TEMP TABLE items_new (LIKE items INCLUDING DEFAULTS, seq bigserial)
  ON COMMIT DROP;
\\copy items_new(id, key, embedding, url, tokens, model) FROM '$work/items.bin' WITH (FORMAT binary)
INSERT INTO items AS i (id, key, embedding, url, tokens, model)
  SELECT DISTINCT ON (id) id, key, embedding, url, tokens, model
  FROM items_new ORDER BY id, seq DESC
ON CONFLICT (id) DO UPDATE
  SET key = excluded.key, embedding = excluded.embedding, url = excluded.url,
      tokens = excluded.tokens, model = excluded.model, loaded_at = now()
  WHERE (i.key, i.url, i.model) IS DISTINCT FROM
        (excluded.key, excluded.url, excluded.model);
COMMIT;
SQL
echo "incremental.sh: $(wc -l < "$work/deleted.tsv") deleted" >&2
exit "$status"  # 2 when some records were rejected
