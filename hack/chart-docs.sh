#!/usr/bin/env bash
# Writes the chart's README (charts/coderun/README.md) from values.yaml's comments with
# helm-docs, and copies its values table into the project README between the
# values-table markers, so both tables always match values.yaml. Fails when a value has no
# comment.
#   hack/chart-docs.sh HELM_DOCS_BINARY
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_PREFIX=chart-docs
helm_docs="${1:?usage: hack/chart-docs.sh HELM_DOCS_BINARY}"

"$helm_docs" --log-level warning --chart-search-root "$ROOT/charts" --sort-values-order file --skip-version-footer
table="$(sed -n '/<!-- values-table:start -->/,/<!-- values-table:end -->/p' "$ROOT/charts/coderun/README.md")"
[ -n "$table" ] || die "charts/coderun/README.md has no values-table markers"
# A row whose last column is empty is a value without a "# --" comment in values.yaml.
if undocumented="$(grep -E '^\| .* \|  \|$' <<<"$table")"; then
	die "values without a \"# --\" comment in charts/coderun/values.yaml:"$'\n'"$undocumented"
fi
quiet_grep '<!-- values-table:start -->' "$ROOT/README.md" || die "README.md has no values-table markers"
# Replace the marked block of README.md with the chart README's one.
TABLE="$table" awk '
	/<!-- values-table:start -->/ { print ENVIRON["TABLE"]; skip = 1; next }
	/<!-- values-table:end -->/ { skip = 0; next }
	!skip { print }
' "$ROOT/README.md" >"$ROOT/README.md.tmp"
mv "$ROOT/README.md.tmp" "$ROOT/README.md"
