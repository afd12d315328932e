# Run by `cmake --install` (install(SCRIPT) in OcpsInstall.cmake): the
# systemd units, the sysusers.d entry and the site settings, with the paths
# of the prefix being installed to. With prefix /usr (the Debian package)
# the site settings go to /etc, otherwise to <prefix>/etc.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(sysconf "/etc")
else()
  set(sysconf "${CMAKE_INSTALL_PREFIX}/etc")
endif()
set(BINDIR "${CMAKE_INSTALL_PREFIX}/${OCPS_INSTALL_BINDIR}")
set(DATADIR "${CMAKE_INSTALL_PREFIX}/${OCPS_INSTALL_DATADIR}")
set(SYSCONFDIR "${sysconf}")
set(STATEDIR "/var/lib/ocps-c") # systemd's StateDirectory=ocps-c
file(MAKE_DIRECTORY "${OCPS_INSTALL_WORK}")
foreach(unit IN LISTS OCPS_SYSTEMD_UNITS)
  configure_file("${OCPS_SYSTEMD_SOURCE}/${unit}.in" "${OCPS_INSTALL_WORK}/${unit}" @ONLY)
  file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
    PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${OCPS_INSTALL_WORK}/${unit}")
endforeach()
configure_file("${OCPS_SYSTEMD_SOURCE}/ocps-c.sysusers" "${OCPS_INSTALL_WORK}/ocps-c.conf" COPYONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/sysusers.d" TYPE FILE
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${OCPS_INSTALL_WORK}/ocps-c.conf")
file(INSTALL DESTINATION "${sysconf}/ocps-c" TYPE FILE
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ FILES "${OCPS_SYSTEMD_SOURCE}/site.env")
