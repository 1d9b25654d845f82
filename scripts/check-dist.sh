#!/usr/bin/env bash
# dist/ is what GitHub runs (action.yml) and what `lss` is (package.json's bin): it must be the
# build of src/. Builds it, then fails, naming the fix, if that changed or added a file under dist/.
# The one check: `npm run check-dist`, .ci/run and the workflow's check-dist job all run this.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run -s build
changed=$(git status --porcelain --untracked-files=all -- dist)
if [ -n "$changed" ]; then
  echo "dist/ is not the build of src/: run 'npm run build' and commit dist/" >&2
  echo "$changed" >&2
  exit 1
fi
echo "dist/ is the build of src/"
