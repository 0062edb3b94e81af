#!/bin/sh
# Embeds FILE... with embedpipe and loads the result into the items table
# with psql \copy, creating the table first if needed. A first, full load;
# incremental.sh keeps the table up to date after it.
#
#   examples/postgres/load.sh sections.jsonl...
#
# Environment:
#   PGHOST, PGPORT, PGUSER, PGDATABASE, ...  where psql connects
#   OPENAI_API_KEY, OPENAI_BASE_URL          what embedpipe uses
#   VECTOR    pgvector (default: vector(N) column, schema-pgvector.sql),
#             halfvec (halfvec(N) column, schema-halfvec.sql) or
#             pgarray (real[] column, schema-real.sql)
#   DIMS      vector length (default 1536)
#   EMBEDPIPE the binary (default: embedpipe on PATH)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
embedpipe=${EMBEDPIPE:-embedpipe}
vector=${VECTOR:-pgvector}
dims=${DIMS:-1536}
case $vector in
  pgvector) schema=schema-pgvector.sql ;;
  halfvec) schema=schema-halfvec.sql ;;
  pgarray) schema=schema-real.sql ;;
  *) echo "load.sh: VECTOR must be pgvector, halfvec or pgarray" >&2; exit 1 ;;
esac
[ $# -gt 0 ] || { echo "usage: load.sh FILE..." >&2; exit 1; }

# Ids and texts are UTF-8 whatever the locale says.
export PGCLIENTENCODING=UTF8
psql -X -q -v ON_ERROR_STOP=1 -v dims="$dims" -f "$here/$schema"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# TSV is PostgreSQL's text COPY format: every value escaped as COPY reads
# it, \N for a record without meta.url. The columns match the \copy below.
set +e
"$embedpipe" --dimensions "$dims" --format tsv --vector "$vector" \
  --carry meta.url --columns id,key,embedding,meta.url,tokens,model \
  --errors "$work/errors.jsonl" "$@" > "$work/items.tsv"
status=$?
set -e
# 2: some records were rejected; the others are still worth loading.
case $status in
  0) ;;
  2) echo "load.sh: rejected records:" >&2; cat "$work/errors.jsonl" >&2 ;;
  *) exit "$status" ;;
esac

# \copy reads the file on this side and sends it over the connection, so
# the server needs no access to it. One COPY: all rows or none.
psql -X -q -v ON_ERROR_STOP=1 \
  -c "\\copy items(id, key, embedding, url, tokens, model) FROM '$work/items.tsv'"
echo "load.sh: loaded $(wc -l < "$work/items.tsv") items" >&2
exit "$status"  # 2 when some records were rejected
