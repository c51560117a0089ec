#!/bin/sh
# Copies the kubelet fixtures into the decode corpus and the committed request seeds into the
# request corpus. The corpora are generated (git-ignored); run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${FIXTURES:-$here/../../shared/fixtures/kubelet}
mkdir -p "$here/corpus/decode" "$here/corpus/request"
for f in "$fixtures"/*.txt; do
    cp "$f" "$here/corpus/decode/$(basename "$f")"
done
cp "$here"/seeds/request/* "$here/corpus/request/"
echo "decode: $(ls "$here/corpus/decode" | wc -l) seeds, request: $(ls "$here/corpus/request" | wc -l) seeds"
