#!/usr/bin/env bash
# Builds the Debian package from a finished build and checks it.
#   check_deb.sh SOURCE_DIR BUILD_DIR WORK_DIR
#
# 1. cpack -G DEB -> WORK_DIR/wallet-outbox_<version>_<arch>.deb
# 2. dpkg-deb --contents: the four programs, the units, the migrations, the monitoring files,
#    the configurations under /etc/wallet-outbox marked as conffiles; Depends: filled in by
#    dpkg-shlibdeps (libpqxx, librdkafka, ...).
# 3. No packaged program contains the build machine's source path (found at run time instead).
# 4. lintian: no errors (warnings are printed; overrides only with a reason).
# 5. `cmake --install` with another prefix (staged with DESTDIR) points the units at that prefix.
set -euo pipefail
source_dir=${1:?usage: check_deb.sh SOURCE_DIR BUILD_DIR WORK_DIR}
build_dir=${2:?}
work=${3:?}
fail() {
  echo "FAIL $*" >&2
  exit 1
}
for tool in cpack dpkg-deb lintian; do
  command -v "${tool}" >/dev/null || fail "${tool} not found (scripts/setup installs lintian; cpack comes with cmake)"
done
rm -rf "${work}"
mkdir -p "${work}"

cpack --config "${build_dir}/CPackConfig.cmake" -G DEB -B "${work}" >"${work}/cpack.log" 2>&1 ||
  { cat "${work}/cpack.log" >&2; fail "cpack failed"; }
debs=("${work}"/wallet-outbox_*_*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || fail "expected one wallet-outbox_<version>_<arch>.deb in ${work}"
deb=${debs[0]}
echo "built ${deb##*/} ($(du -h "${deb}" | cut -f1))"

dpkg-deb --contents "${deb}" | awk '{print $6}' | sed 's#^\./#/#; s#/$##' >"${work}/contents"
expected=(
  /usr/bin/wallet-service /usr/bin/outbox-relay /usr/bin/broadcaster-worker /usr/bin/walletctl
  /lib/systemd/system/wallet-migrate.service /lib/systemd/system/wallet-service.service
  /lib/systemd/system/outbox-relay.service /lib/systemd/system/broadcaster-worker.service
  /etc/wallet-outbox/wallet.toml /etc/wallet-outbox/relay.toml /etc/wallet-outbox/broadcaster.toml
  /usr/share/wallet-outbox/monitoring/alerts.yml /usr/share/wallet-outbox/monitoring/prometheus.yml
  /usr/share/wallet-outbox/monitoring/grafana-dashboard.json
  /usr/share/doc/wallet-outbox/copyright /usr/share/doc/wallet-outbox/changelog.gz
)
for migration in "${source_dir}"/sql/migrations/*.sql; do
  expected+=("/usr/share/wallet-outbox/migrations/${migration##*/}")
done
for path in "${expected[@]}"; do
  grep -qxF "${path}" "${work}/contents" || fail "${deb##*/} lacks ${path}"
done
echo "contents: ${#expected[@]} expected paths present"

dpkg-deb -e "${deb}" "${work}/control"
for conffile in /etc/wallet-outbox/wallet.toml /etc/wallet-outbox/relay.toml /etc/wallet-outbox/broadcaster.toml; do
  grep -qxF "${conffile}" "${work}/control/conffiles" || fail "${conffile} is not a conffile"
done
depends=$(dpkg-deb -f "${deb}" Depends)
for library in libpqxx librdkafka libc6 libsystemd0; do
  [[ ${depends} == *"${library}"* ]] || fail "Depends lacks ${library} (dpkg-shlibdeps): ${depends}"
done
echo "Depends: ${depends}"

dpkg-deb -x "${deb}" "${work}/root"
for program in wallet-service outbox-relay broadcaster-worker walletctl; do
  if grep -qF "${source_dir}" "${work}/root/usr/bin/${program}"; then
    fail "/usr/bin/${program} contains the build machine's source path ${source_dir}"
  fi
done
grep -q '^ExecStart=/usr/bin/outbox-relay ' "${work}/root/lib/systemd/system/outbox-relay.service" ||
  fail "the packaged outbox-relay.service does not start /usr/bin/outbox-relay"

# --suppress-tags: none. Errors fail; warnings and info are shown for the record.
lintian --tag-display-limit 0 "${deb}" >"${work}/lintian.log" 2>&1 || true
cat "${work}/lintian.log"
if grep -q '^E: ' "${work}/lintian.log"; then
  fail "lintian reports errors"
fi
echo "lintian: no errors"

DESTDIR="${work}/staged" cmake --install "${build_dir}" --prefix /opt/wallet-outbox >"${work}/install.log" 2>&1 ||
  { cat "${work}/install.log" >&2; fail "cmake --install failed"; }
grep -q '^ExecStart=/opt/wallet-outbox/bin/walletctl migrate up$' \
  "${work}/staged/lib/systemd/system/wallet-migrate.service" || fail "cmake --install --prefix did not rewrite the units"
[[ -x ${work}/staged/opt/wallet-outbox/bin/walletctl && -f ${work}/staged/etc/wallet-outbox/relay.toml ]] ||
  fail "cmake --install: programs or /etc/wallet-outbox missing"
echo "cmake --install --prefix /opt/wallet-outbox: units point at /opt/wallet-outbox/bin"
