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

