# What `cmake --install` puts where (GNUInstallDirs, FHS), and the Debian
# package (`cpack -G DEB` in the build directory). docs/deployment.md.
#
#   bin/          ocps-csc ocps-cmd sal-info ocps-butler ocps-fakeraws
#                 ocps-engine ocps-pipetask
#   libexec/ocps-c/ocps-job-runner    found by ocps-csc relative to itself
#   share/ocps-c/config/OCPS/v4/      default configuration (DM_CONFIG_OCPS_DIR)
#   share/ocps-c/interfaces/v<ver>/   the generator's IDL and Avro schemas
#   share/ocps-c/cyclonedds-loopback.xml
#   share/ocps-c/pipelines/           ocps-pipetask's shipped pipelines
#   share/man/man1/                   manual pages
#   share/doc/ocps-c/                 README and docs
#   lib/systemd/system/, lib/sysusers.d/   service units and the system user
#   <sysconf>/ocps-c/site.env         the site's settings (a conffile)

# Installing (and cpack) never builds: it takes what the last build made,
# so a package holds exactly the tested programs, and making one while
# tests run cannot relink the programs under them. Build first.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(ocps_programs ocps-csc ocps-cmd sal-info ocps-butler ocps-fakeraws ocps-engine ocps-pipetask)
foreach(prog IN LISTS ocps_programs)
  if(TARGET ${prog})
    install(TARGETS ${prog} RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
  endif()
endforeach()
install(TARGETS ocps-job-runner RUNTIME DESTINATION "${CMAKE_INSTALL_LIBEXECDIR}/ocps-c")

set(ocps_data "${CMAKE_INSTALL_DATADIR}/ocps-c")
install(DIRECTORY "${CMAKE_SOURCE_DIR}/deploy/config/" DESTINATION "${ocps_data}/config")
install(FILES "${CMAKE_SOURCE_DIR}/deploy/cyclonedds-loopback.xml" DESTINATION "${ocps_data}")
# The generator's outputs other programs read: the IDL (ts_sal layout) and
# the Avro schemas (as salobj 8 registers them) of each embedded release.
foreach(entry IN LISTS ocps_interface_RELEASE_DIRS)
  string(REGEX REPLACE "=.*" "" ver "${entry}")
  string(REGEX REPLACE "^[^=]*=" "" dir "${entry}")
  install(DIRECTORY "${dir}/dds" "${dir}/avro" DESTINATION "${ocps_data}/interfaces/v${ver}")
endforeach()

# Manual pages of the programs installed.
foreach(prog IN LISTS ocps_programs)
  if(TARGET ${prog} AND EXISTS "${CMAKE_SOURCE_DIR}/docs/man/${prog}.1")
    install(FILES "${CMAKE_SOURCE_DIR}/docs/man/${prog}.1" DESTINATION "${CMAKE_INSTALL_MANDIR}/man1")
  endif()
endforeach()
file(GLOB ocps_docs "${CMAKE_SOURCE_DIR}/docs/*.md")
install(FILES "${CMAKE_SOURCE_DIR}/README.md" ${ocps_docs} DESTINATION "${CMAKE_INSTALL_DOCDIR}")

# systemd units, the system user, the site's settings: their paths depend on
# the prefix chosen at install time (cmake --install --prefix, or /usr in the
# package), so cmake/OcpsInstallSystem.cmake writes them then.
set(ocps_units "ocps-csc@.service")
if(TARGET ocps-engine)
  list(APPEND ocps_units "ocps-engine.service")
endif()
install(CODE "
set(OCPS_SYSTEMD_SOURCE \"${CMAKE_SOURCE_DIR}/deploy/systemd\")
set(OCPS_SYSTEMD_UNITS \"${ocps_units}\")
set(OCPS_INSTALL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(OCPS_INSTALL_DATADIR \"${CMAKE_INSTALL_DATADIR}\")
set(OCPS_INSTALL_WORK \"${CMAKE_BINARY_DIR}/install-units\")
")
install(SCRIPT "${CMAKE_SOURCE_DIR}/cmake/OcpsInstallSystem.cmake")

# The Debian package: ocps-c_<version>_<arch>.deb, the version from git
# describe at build time (read by cpack from the build, OcpsCPackConfig),
# the dependencies from dpkg-shlibdeps.
find_program(OCPS_DPKG dpkg)
set(OCPS_DEB_ARCH "amd64")
if(OCPS_DPKG)
  execute_process(COMMAND "${OCPS_DPKG}" --print-architecture OUTPUT_VARIABLE OCPS_DEB_ARCH
    OUTPUT_STRIP_TRAILING_WHITESPACE)
endif()
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "ocps-c")
set(CPACK_PACKAGE_VENDOR "Vera C. Rubin Observatory")
set(CPACK_PACKAGE_CONTACT "Rubin Observatory OCPS maintainers <ocps@lsst.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "OCS-Controlled Pipeline Service (OCPS) CSC in C, over DDS or Kafka")
set(CPACK_PACKAGE_DESCRIPTION
  "The OCPS Commandable SAL Component of the Vera C. Rubin Observatory: execute and abort_job
 commands from ScriptQueue scripts and LOVE run processing jobs on a durable job engine;
 state and results over SAL (DDS as salobj 7, or Kafka as salobj 8). With the commander
 ocps-cmd, sal-info, the butler-lite tools, systemd units and a default configuration.")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}") # replaced by the built version at cpack time
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_INSTALL_PREFIX "/usr")
set(CPACK_SET_DESTDIR ON) # the units and /etc files are placed by prefix at install time
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE "${OCPS_DEB_ARCH}")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON) # no debug information (nor build paths) in the package
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "git")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "systemd")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/lsst-ts")
# The maintainer scripts: postinst (the ocps user, the state directory;
# after an upgrade the running services restarted), prerm (the services
# stopped at a removal) and postrm (systemd's records; at a purge the
# enablement state), as dh_installsystemd's would be. Copied as they are.
set(ocps_deb_control "")
foreach(f postinst prerm postrm conffiles)
  configure_file("${CMAKE_SOURCE_DIR}/deploy/debian/${f}" "${CMAKE_BINARY_DIR}/debian/${f}" COPYONLY)
  list(APPEND ocps_deb_control "${CMAKE_BINARY_DIR}/debian/${f}")
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${ocps_deb_control}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
configure_file("${CMAKE_SOURCE_DIR}/cmake/OcpsCPackConfig.cmake.in" "${CMAKE_BINARY_DIR}/OcpsCPackConfig.cmake" @ONLY)
set(CPACK_PROJECT_CONFIG_FILE "${CMAKE_BINARY_DIR}/OcpsCPackConfig.cmake")
include(CPack)
