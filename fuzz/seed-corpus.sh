#!/usr/bin/env bash
# Seeds each fuzz target's corpus from the API fixtures under tests/fixtures/, with the
# first byte choosing the decoder as the targets expect. Run from fuzz/.
set -euo pipefail
fixtures=../tests/fixtures
mkdir -p corpus/qonto_json corpus/graph_json corpus/state_file corpus/names
seed() { # target selector file
    { printf "\\x$(printf %02x "$2")"; cat "$3"; } > "corpus/$1/$(basename "$3").$2"
}
for f in "$fixtures"/qonto/organization*.json; do seed qonto_json 0 "$f"; done
for f in "$fixtures"/qonto/transactions_page*.json; do seed qonto_json 1 "$f"; done
seed qonto_json 2 "$fixtures/qonto/attachment.json"
for f in "$fixtures"/qonto/error_*.json "$fixtures/qonto/login_page.html"; do seed qonto_json 3 "$f"; done
for f in file_uploaded folder_created subfolder_created file_in_the_way approot; do
    seed graph_json 0 "$fixtures/graph/$f.json"
done
for f in "$fixtures"/graph/delta_*.json "$fixtures"/graph/children_*.json; do seed graph_json 1 "$f"; done
for f in upload_session fragment_accepted; do seed graph_json 2 "$fixtures/graph/$f.json"; done
seed graph_json 3 "$fixtures/graph/drive.json"
for f in "$fixtures"/graph/error_*.json; do seed graph_json 4 "$f"; done
printf 'Main account\xffFR76 3000 4000 0312 3456 7890 143\xffAmazon EU\xffinvoice.pdf\xffr1' \
    > corpus/names/example
printf 'CON\xff\xff../..\\x:y*?\xff.pdf \xff' > corpus/names/reserved
# A state file a sync wrote, with a journal after it (written by a test of the crate).
FUZZ_STATE_SEED="$PWD/corpus/state_file" cargo test --quiet --manifest-path ../Cargo.toml \
    --all-features --test bad_input the_written_state_loads >/dev/null
