# Debian packages, built from a configured and built tree with `cpack -G DEB` (tools/dev.sh package):
#   ringcast_<version>_<arch>.deb        the server: /usr/bin/ringcast, its unit, /etc/ringcast/ringcast.toml
#   ringcast-tools_<version>_<arch>.deb  the load generator, /usr/bin/ringcast-load
# The load generator is a separate package because it belongs on client and benchmark machines,
# not on the servers. Files come from the install rules (components "server" and "tools"); cpack
# installs them with prefix /usr, which tools/packaging/install_service.cmake maps to the Debian layout.

set(RINGCAST_DEB_MAINTAINER "ringcast maintainers <maintainers@ringcast.invalid>"
    CACHE STRING "Maintainer field of the Debian packages")

set(CPACK_PACKAGE_NAME ringcast)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${RINGCAST_DEB_MAINTAINER}")
# No CPACK_PACKAGE_DESCRIPTION_SUMMARY: CPackDeb would put it above each component's own
# description (first line = synopsis) below.
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# Binaries ship stripped, as in Debian's own packages.
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server)
if(TARGET ringcast-load)
  list(APPEND CPACK_COMPONENTS_ALL tools)
endif()

# ringcast_0.1.0_amd64.deb: name, version and architecture (dpkg --print-architecture), no revision.
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps (dpkg-dev) on the binaries actually packaged.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Maintainer scripts 0755 and conffiles 0644, whatever the checkout's modes are.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME ringcast)
set(CPACK_DEBIAN_SERVER_DESCRIPTION
    "WebSocket message hub (io_uring, thread-per-core)
ringcast is a Linux-native WebSocket server for real-time relay and broadcast:
per-core io_uring loops (epoll where io_uring is unavailable), rooms with
presence, history and retained state, a durable SQLite store, a native JSON
protocol and five drop-in seed protocol profiles.
.
The package runs it as the systemd service ringcast.service, configured in
/etc/ringcast/ringcast.toml; `systemctl reload ringcast` applies most changes.")
# adduser creates the service account; deb-systemd-helper/-invoke (init-system-helpers) run in
# postinst, which is why it is a Pre-Depends, as debhelper declares it.
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_SERVER_PACKAGE_PREDEPENDS "init-system-helpers (>= 1.54~)")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
    "${PROJECT_SOURCE_DIR}/tools/packaging/deb/conffiles;${PROJECT_SOURCE_DIR}/tools/packaging/deb/postinst;${PROJECT_SOURCE_DIR}/tools/packaging/deb/prerm;${PROJECT_SOURCE_DIR}/tools/packaging/deb/postrm")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME ringcast-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOOLS_DESCRIPTION
    "load generator for ringcast and other WebSocket servers
ringcast-load drives a WebSocket server with echo, broadcast, relay and
connection scenarios, checks every reply and its order, and reports throughput
and latency percentiles.")

include(CPack)
