#!/usr/bin/env bash
# The C++ sources follow .clang-format: `clang-format --dry-run --Werror` over every tracked
# .cpp/.hpp. Fix a failure with: clang-format -i FILE... (or the editor's format-on-save).
# Exit 77 (reported as skipped) when clang-format is not installed; scripts/setup installs it.
set -euo pipefail
root=${1:?usage: format_check.sh SOURCE_DIR}
command -v clang-format >/dev/null || { echo "clang-format is not installed"; exit 77; }
cd "${root}"
mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp')
clang-format --dry-run --Werror "${files[@]}"
echo "${#files[@]} files follow .clang-format"
