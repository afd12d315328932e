# Deployment: manual pages, structured log lines, the Debian package in a
# clean root, the systemd units, the container and Kubernetes manifests
# (tests/deploy/, docs/deployment.md). Label deploy.

# Log lines as one JSON object each (csc/util/sal_logline.h).
ocps_test_exe(test_log_lines salutil PkgConfig::JANSSON)
add_test(NAME log_lines COMMAND test_log_lines)
add_test(NAME deploy_log_json
  COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/deploy/log_json.py"
          "$<TARGET_FILE:ocps-csc>" "$<TARGET_FILE:ocps-job-runner>" "${CMAKE_SOURCE_DIR}")
set_tests_properties(deploy_log_json PROPERTIES TIMEOUT 180 LABELS deploy)

# Manual pages: every installed program has one, and groff and man-db
# format each without a warning.
set(ocps_man_programs "")
foreach(prog ocps-csc ocps-cmd ocps-butler ocps-fakeraws ocps-engine ocps-pipetask)
  if(TARGET ${prog})
    list(APPEND ocps_man_programs ${prog})
  endif()
endforeach()
add_test(NAME deploy_man_pages
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/deploy/man_pages.sh" "${CMAKE_SOURCE_DIR}" ${ocps_man_programs})
set_tests_properties(deploy_man_pages PROPERTIES LABELS deploy)

# The package: built with cpack, installed with dpkg in a clean root made
# from this system's packages, the CSC run there through a state cycle by
# the installed ocps-cmd (root only: namespaces and chroot; skipped
# otherwise). Not in the sanitizer builds, whose programs need their
# runtimes (and whose cycle the other tests cover).
if(NOT OCPS_SANITIZE AND NOT OCPS_TSAN AND NOT OCPS_FUZZ)
  add_test(NAME deploy_deb_install
    COMMAND "${Python3_EXECUTABLE}" "${CMAKE_CURRENT_SOURCE_DIR}/deploy/deb_install.py" "${CMAKE_BINARY_DIR}")
  set_tests_properties(deploy_deb_install PROPERTIES TIMEOUT 400 LABELS deploy SKIP_RETURN_CODE 77
    RESOURCE_LOCK ocps_cpack)
endif()

# The systemd units: systemd-analyze verify and security (offline, no
# systemd running), the sandbox settings, the sysusers.d entry.
find_program(OCPS_SYSTEMD_ANALYZE systemd-analyze)
if(OCPS_SYSTEMD_ANALYZE)
  add_test(NAME deploy_systemd_units
    COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/deploy/systemd_units.sh" "${CMAKE_BINARY_DIR}" "${CMAKE_SOURCE_DIR}")
  set_tests_properties(deploy_systemd_units PROPERTIES TIMEOUT 120 LABELS deploy)
else()
  message(STATUS "ocps-c: systemd-analyze not found (apt-get install systemd); deploy_systemd_units skipped")
endif()

# The Containerfile, its entrypoint (salobj's RUN_ARG) and the Kubernetes
# manifests (parsed with PyYAML: python3-yaml; the configuration a pod
# reads validated against the CSC's schema by python3-jsonschema).
add_test(NAME deploy_manifests
  COMMAND "${OCPS_DEBIAN_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/deploy/manifests.py" "${CMAKE_SOURCE_DIR}")
set_tests_properties(deploy_manifests PROPERTIES TIMEOUT 60 LABELS deploy)

# The manifests against the Kubernetes API's schemas (npm kubernetes-models;
# node and npm from Debian; skipped without them or the npm registry).
add_test(NAME deploy_k8s_schemas
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/deploy/k8s_schemas.sh" "${CMAKE_SOURCE_DIR}" "${CMAKE_BINARY_DIR}")
set_tests_properties(deploy_k8s_schemas PROPERTIES TIMEOUT 300 LABELS deploy SKIP_RETURN_CODE 77)

# The same manifests rehearsed with processes for pods: ocps-engine with
# the Deployment's options, ocps-csc with the configuration and token its
# pod gets, a job executed by ocps-cmd running in the engine; over Kafka
# (the pods' transport) with the test broker and registry when built.
if(TARGET ocps-engine AND TARGET ocps-csc AND TARGET ocps-cmd)
  set(ocps_rehearsal_kafka "")
  if(OCPS_TRANSPORT_KAFKA) # tests/kafka's fixtures (added after this file)
    set(ocps_rehearsal_kafka --kafka "$<TARGET_FILE:ocps-mock-broker>" "$<TARGET_FILE:ocps-schema-registry>")
    if(OpenSSL_FOUND) # tests/kafka builds ocps-sasl-front
      list(APPEND ocps_rehearsal_kafka "$<TARGET_FILE:ocps-sasl-front>")
    endif()
  endif()
  add_test(NAME deploy_k8s_rehearsal
    COMMAND "${OCPS_DEBIAN_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/deploy/k8s_rehearsal.py"
            "${CMAKE_BINARY_DIR}" "${CMAKE_SOURCE_DIR}" ${ocps_rehearsal_kafka})
  set_tests_properties(deploy_k8s_rehearsal PROPERTIES TIMEOUT 240 LABELS deploy SKIP_RETURN_CODE 77)
endif()

# cmake --install: the FHS layout, and the installed programs run.
set(ocps_embedded_releases "")
foreach(entry IN LISTS ocps_interface_RELEASE_DIRS)
  string(REGEX REPLACE "=.*" "" ver "${entry}")
  list(APPEND ocps_embedded_releases "${ver}")
endforeach()
add_test(NAME deploy_install_layout
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/deploy/install_layout.sh" "${CMAKE_BINARY_DIR}" ${ocps_embedded_releases})
set_tests_properties(deploy_install_layout PROPERTIES TIMEOUT 120 LABELS deploy)

add_test(NAME deploy_version_rules
  COMMAND sh "${CMAKE_CURRENT_SOURCE_DIR}/deploy/version_rules.sh" "${PROJECT_SOURCE_DIR}")
set_tests_properties(deploy_version_rules PROPERTIES TIMEOUT 60 LABELS deploy)
