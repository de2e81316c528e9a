# shellcheck shell=bash
# Sourced by bench/<component>/run.sh: puts a component's markdown section into bench/README.md.

# readme_section README FILE: FILE's first line is the section's "## " heading; README's section
# of that heading (up to the next "## " heading) is replaced by FILE, or FILE is appended.
# Other components' sections stay as they are. Unless NO_README is set.
readme_section() {
  local readme=$1 file=$2 heading tmp
  [[ -z ${NO_README:-} ]] || return 0
  heading="$(head -n1 "${file}")"
  [[ ${heading} == "## "* ]] || { echo "readme_section: ${file} does not open with a '## ' heading" >&2; return 1; }
  if [[ ! -f ${readme} ]]; then
    # shellcheck disable=SC2016 # literal backquotes in markdown
    printf '# Benchmarks\n\nEach component writes its own section with `bench/<component>/run.sh`.\n' >"${readme}"
  fi
  tmp="$(mktemp)"
  awk -v file="${file}" -v heading="${heading}" '
    function emit() { while ((getline line < file) > 0) print line; print ""; done = 1 }
    { trimmed = $0; sub(/[[:space:]]+$/, "", trimmed) }
    trimmed == heading { emit(); skipping = 1; next }
    skipping && /^## / { skipping = 0 }
    !skipping { print }
    END { if (!done) { print ""; emit() } }
  ' "${readme}" >"${tmp}"
  mv "${tmp}" "${readme}"
  echo "results written to ${readme} under \"${heading}\"" >&2
}
