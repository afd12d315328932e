# Find every dependency, failing early with the Debian package to install.
# deploy/install-deps.sh installs all of them.
find_package(PkgConfig)
if(NOT PKG_CONFIG_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install pkg-config (or run deploy/install-deps.sh)")
endif()

find_package(Python3 COMPONENTS Interpreter)
if(NOT Python3_Interpreter_FOUND)
  message(FATAL_ERROR "python3 not found (build-time generator): apt-get install python3")
endif()

# ocps_require_pkg(<prefix> <pkg-config module> <Debian package>)
function(ocps_require_pkg prefix module debpkg)
  pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install ${debpkg} (or run deploy/install-deps.sh)")
  endif()
endfunction()

find_package(CycloneDDS QUIET)
if(NOT CycloneDDS_FOUND)
  message(FATAL_ERROR "Cyclone DDS not found: apt-get install cyclonedds-dev cyclonedds-tools (or run deploy/install-deps.sh)")
endif()
find_program(OCPS_IDLC idlc)
if(NOT OCPS_IDLC)
  message(FATAL_ERROR "idlc not found: apt-get install cyclonedds-tools (or run deploy/install-deps.sh)")
endif()

ocps_require_pkg(JANSSON jansson libjansson-dev)
ocps_require_pkg(CFITSIO cfitsio libcfitsio-dev)
ocps_require_pkg(UV libuv libuv1-dev)
ocps_require_pkg(YAML yaml-0.1 libyaml-dev)
ocps_require_pkg(PCRE2 libpcre2-8 libpcre2-dev)
ocps_require_pkg(SQLITE sqlite3 libsqlite3-dev)
ocps_require_pkg(EDIT libedit libedit-dev)
# index 101 (Rapid Analysis): Redis through hiredis's async API and its libuv adapter
ocps_require_pkg(HIREDIS hiredis libhiredis-dev)
ocps_require_pkg(MHD libmicrohttpd libmicrohttpd-dev) # ocps-engine's HTTP server
ocps_require_pkg(CURL libcurl libcurl4-openssl-dev)   # the engine's UWS executor
if(OCPS_BUILD_TESTS)
  ocps_require_pkg(CMOCKA cmocka libcmocka-dev)
endif()
if(OCPS_TRANSPORT_KAFKA OR OCPS_BUILD_TESTS) # tests parse every generated schema
  ocps_require_pkg(AVRO avro-c libavro-dev)
endif()
if(OCPS_TRANSPORT_KAFKA)
  ocps_require_pkg(RDKAFKA rdkafka librdkafka-dev)
endif()
