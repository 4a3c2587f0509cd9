# Runs at install time (install(CODE) in the top-level CMakeLists.txt), so the layout follows the
# prefix actually installed to: `cmake --install build` (/usr/local unless configured otherwise),
# `cmake --install build --prefix DIR`, or cpack's DEB generator (prefix /usr, files under DESTDIR).
# Inputs: RINGCAST_SOURCE_DIR, RINGCAST_BINARY_DIR, RINGCAST_BINDIR and RINGCAST_SYSCONFDIR (the
# configured CMAKE_INSTALL_BINDIR / CMAKE_INSTALL_SYSCONFDIR, relative to the prefix or absolute).

if(IS_ABSOLUTE "${RINGCAST_BINDIR}")
  set(bindir "${RINGCAST_BINDIR}")
else()
  set(bindir "${CMAKE_INSTALL_PREFIX}/${RINGCAST_BINDIR}")
endif()

# The /usr prefix is the distribution's own (the .deb): configuration in /etc, as GNUInstallDirs
# has it, and units in /lib/systemd/system, where Debian 12 packages ship them. Any other prefix
# keeps both under itself; systemd also reads /usr/local/lib/systemd/system.
if(IS_ABSOLUTE "${RINGCAST_SYSCONFDIR}")
  set(sysconfdir "${RINGCAST_SYSCONFDIR}")
elseif(CMAKE_INSTALL_PREFIX STREQUAL "/usr" AND RINGCAST_SYSCONFDIR STREQUAL "etc")
  set(sysconfdir "/etc")
else()
  set(sysconfdir "${CMAKE_INSTALL_PREFIX}/${RINGCAST_SYSCONFDIR}")
endif()
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(unitdir "/lib/systemd/system")
else()
  set(unitdir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()

# file(INSTALL) adds DESTDIR and records the files in install_manifest.txt like install(FILES).
set(RINGCAST_UNIT_BINDIR "${bindir}")
set(unit "${RINGCAST_BINARY_DIR}/install-time/ringcast.service")
configure_file("${RINGCAST_SOURCE_DIR}/systemd/ringcast.service.in" "${unit}" @ONLY)
file(INSTALL DESTINATION "${unitdir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     FILES "${unit}")
file(INSTALL DESTINATION "${sysconfdir}/ringcast" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${RINGCAST_SOURCE_DIR}/systemd/ringcast.toml")
