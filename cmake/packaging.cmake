# Install layout (`cmake --install`) and the Debian package (`cpack -G DEB` in the build dir).
#
#   <prefix>/bin/{wallet-service,outbox-relay,broadcaster-worker,walletctl}
#   <prefix>/share/wallet-outbox/migrations/*.sql     found by walletctl next to its binary
#   <prefix>/share/wallet-outbox/monitoring/          alerts.yml, prometheus.yml, grafana-dashboard.json
#   <prefix>/share/doc/wallet-outbox/                 README.md, copyright, changelog.gz
#   /etc/wallet-outbox/{wallet,relay,broadcaster}.toml  conf/*.production.toml (conffiles in the .deb)
#   ${OUTBOX_SYSTEMD_UNIT_DIR}/*.service               conf/systemd/, /usr/bin rewritten to <prefix>/bin
#
# /etc and the unit folder are absolute on purpose: that is where systemd and the units look,
# whatever the prefix. Stage with DESTDIR (`DESTDIR=/tmp/root cmake --install build`).
# The package: wallet-outbox_<version>_<arch>.deb, prefix /usr, binaries stripped, Depends:
# computed by dpkg-shlibdeps from the binaries.
include(GNUInstallDirs)

set(OUTBOX_SYSTEMD_UNIT_DIR /lib/systemd/system CACHE PATH "Where the systemd units are installed")
set(outbox_doc_dir ${CMAKE_INSTALL_DATADIR}/doc/wallet-outbox)
set(outbox_share_dir ${CMAKE_INSTALL_DATADIR}/wallet-outbox)

install(TARGETS wallet-service outbox-relay broadcaster-worker walletctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/sql/migrations/ DESTINATION ${outbox_share_dir}/migrations
        FILES_MATCHING PATTERN "*.sql")
install(FILES ${PROJECT_SOURCE_DIR}/conf/monitoring/alerts.yml ${PROJECT_SOURCE_DIR}/conf/monitoring/prometheus.yml
              ${PROJECT_SOURCE_DIR}/conf/monitoring/grafana-dashboard.json
        DESTINATION ${outbox_share_dir}/monitoring)
foreach(daemon IN ITEMS wallet relay broadcaster)
  install(FILES ${PROJECT_SOURCE_DIR}/conf/${daemon}.production.toml DESTINATION /etc/wallet-outbox
          RENAME ${daemon}.toml PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
endforeach()

# The units name /usr/bin/<program> (the package's layout); another prefix gets its own path,
# substituted when installing (CMAKE_INSTALL_PREFIX is only final then: cpack sets /usr).
set(outbox_units wallet-migrate.service wallet-service.service outbox-relay.service broadcaster-worker.service)
foreach(unit IN LISTS outbox_units)
  install(CODE "
    file(READ \"${PROJECT_SOURCE_DIR}/conf/systemd/${unit}\" unit_text)
    string(REPLACE \"/usr/bin/\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}/\" unit_text \"\${unit_text}\")
    string(REPLACE \"file:///usr/share/\" \"file://\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DATADIR}/\" unit_text \"\${unit_text}\")
    file(WRITE \"${CMAKE_BINARY_DIR}/installed-units/${unit}\" \"\${unit_text}\")")
  install(FILES ${CMAKE_BINARY_DIR}/installed-units/${unit} DESTINATION ${OUTBOX_SYSTEMD_UNIT_DIR})
endforeach()

# Debian's documentation files: copyright and a gzip -n changelog (lintian wants both, no timestamp).
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/changelog.in ${CMAKE_BINARY_DIR}/debian/changelog @ONLY)
execute_process(COMMAND gzip -9nf ${CMAKE_BINARY_DIR}/debian/changelog)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${CMAKE_CURRENT_LIST_DIR}/debian/copyright
              ${CMAKE_BINARY_DIR}/debian/changelog.gz
        DESTINATION ${outbox_doc_dir})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wallet-outbox)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "wallet-outbox")
set(CPACK_PACKAGE_CONTACT "wallet-outbox maintainers <wallet-outbox@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "transactional outbox from PostgreSQL to Kafka for a crypto wallet")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.org/wallet-outbox")
# CPack adds the summary as the synopsis line and indents these lines (an empty one becomes " .").
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "wallet-service takes withdrawals over HTTP (debit, withdrawal and outbox row
in one PostgreSQL transaction), outbox-relay publishes the outbox to Kafka or
Redis Streams, broadcaster-worker signs and broadcasts exactly one Ethereum
transaction per withdrawal, walletctl migrates the database and inspects
withdrawals and the outbox.

Ships systemd units, production example configurations in /etc/wallet-outbox,
the SQL migrations, Prometheus alert rules and a Grafana dashboard.")
# Configuration files an operator edits survive upgrades (dpkg asks before replacing them).
set(outbox_conffiles "")
foreach(daemon IN ITEMS wallet relay broadcaster)
  string(APPEND outbox_conffiles "/etc/wallet-outbox/${daemon}.toml\n")
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/debian/conffiles "${outbox_conffiles}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/postinst ${CMAKE_BINARY_DIR}/debian/postinst COPYONLY)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/postrm ${CMAKE_BINARY_DIR}/debian/postrm COPYONLY)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_BINARY_DIR}/debian/conffiles ${CMAKE_BINARY_DIR}/debian/postinst ${CMAKE_BINARY_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
