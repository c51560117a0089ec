#!/bin/sh
# Copies the kubelet fixtures into the decode corpus and the committed seeds of the other
# targets into theirs. The corpora are generated (git-ignored); run from anywhere.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
fixtures=${FIXTURES:-$here/../../shared/fixtures/kubelet}
mkdir -p "$here/corpus/decode" "$here/corpus/request" "$here/corpus/kubelet_response"
for f in "$fixtures"/*.txt; do
    cp "$f" "$here/corpus/decode/$(basename "$f")"
done
cp "$here"/seeds/request/* "$here/corpus/request/"
cp "$here"/seeds/kubelet_response/* "$here/corpus/kubelet_response/"
echo "decode: $(ls "$here/corpus/decode" | wc -l) seeds, request: $(ls "$here/corpus/request" | wc -l) seeds," \
    "kubelet_response: $(ls "$here/corpus/kubelet_response" | wc -l) seeds"
