# ocps-engine (processing/uws): the real daemon, spoken to with curl.
# Included by tests/CMakeLists.txt.
add_library(uws_fixture STATIC support/uws_fixture.c)
target_include_directories(uws_fixture PUBLIC support)
target_link_libraries(uws_fixture PUBLIC test_util PkgConfig::JANSSON)
target_compile_definitions(uws_fixture PUBLIC OCPS_ENGINE="$<TARGET_FILE:ocps-engine>")
add_dependencies(uws_fixture ocps-engine ocps-job-runner)

# uws_api: every route, status code, JSON shape and phase.
# uws_hostile: malformed and hostile requests; the bearer token.
# uws_restart: SIGKILL and restart, jobs survive; a long queue taken up at start.
# uws_stderr: stderr on a stalled pipe: every request answered, its log
#   lines dropped and counted.
# uws_page: the status pages: a bounded page of the history, job pages built
# off the loop for many clients at once; GET /job of a long history built
# off the loop too.
foreach(t uws_api uws_hostile uws_restart uws_page uws_stderr)
  ocps_test_exe(test_${t} uws_fixture)
  add_test(NAME ${t} COMMAND test_${t})
  set_tests_properties(${t} PROPERTIES TIMEOUT 300 LABELS uws)
endforeach()
# uws_page writes and lists long histories: 61-77 s optimised, over 300 s in
# the ASan + UBSan Debug build (ci16a: 282 s, ci16b: the 300 s timeout).
set_tests_properties(uws_page PROPERTIES TIMEOUT 900)
# uws_hung_mount: stopped while its work root hangs (stallfs), ocps-engine
# exits within its close grace; the next one runs the job. GETs that read
# the hung root wait alone: PUT, /healthz, a queued job answered at once;
# DELETE and POST .../phase ABORT kill a running job at once, only their
# own answers waiting for the mount; a large result's transfer that the
# mount holds in the middle waits alone too.
if(TARGET stallfs_fixture)
  ocps_test_exe(test_uws_hung_mount uws_fixture stallfs_fixture)
  add_test(NAME uws_hung_mount COMMAND test_uws_hung_mount)
  set_tests_properties(uws_hung_mount PROPERTIES TIMEOUT 300 LABELS uws SKIP_RETURN_CODE 77)
endif()
# uws_page's long history and uws_restart's long queue are written into the
# store as the history benches do.
target_link_libraries(test_uws_page PRIVATE bench_history_fill)
target_link_libraries(test_uws_restart PRIVATE bench_history_fill)
# uws_restart reads a job's seq from the store, for the name of its files moved aside
target_link_libraries(test_uws_restart PRIVATE PkgConfig::SQLITE)

# engine_uws: the engine's UWS executor against a real ocps-engine.
ocps_test_exe(test_engine_uws uws_fixture engine_fixture)
# SQLite to rewind a stored phase; libmicrohttpd for a server whose DELETE fails
target_link_libraries(test_engine_uws PRIVATE PkgConfig::SQLITE PkgConfig::MHD)
add_test(NAME engine_uws COMMAND test_engine_uws)
set_tests_properties(engine_uws PROPERTIES TIMEOUT 300 LABELS uws)
# engine_uws_clock: the wall clock of the engine's process stepped back
# 600 s (libfaketime, found in engine_tests.cmake) while a job is polled or
# waits out a backoff: its end still seen within a few intervals. Skipped
# (77) without libfaketime.
ocps_test_exe(test_engine_uws_clock uws_fixture engine_fixture)
if(OCPS_LIBFAKETIME)
  target_compile_definitions(test_engine_uws_clock PRIVATE OCPS_LIBFAKETIME="${OCPS_LIBFAKETIME}")
endif()
add_test(NAME engine_uws_clock COMMAND test_engine_uws_clock)
set_tests_properties(engine_uws_clock PROPERTIES TIMEOUT 120 LABELS uws SKIP_RETURN_CODE 77)
# uws_gone_clock: ocps-engine's wall clock stepped back 600 s (libfaketime)
# between a DELETE and a new job with the same Idempotency-Key, then a
# SIGKILL before the deleted job's files are removed: the next start keeps
# the new job. Skipped (77) without libfaketime.
ocps_test_exe(test_uws_gone_clock uws_fixture)
if(OCPS_LIBFAKETIME)
  target_compile_definitions(test_uws_gone_clock PRIVATE OCPS_LIBFAKETIME="${OCPS_LIBFAKETIME}")
endif()
add_test(NAME uws_gone_clock COMMAND test_uws_gone_clock)
set_tests_properties(uws_gone_clock PROPERTIES TIMEOUT 300 LABELS uws SKIP_RETURN_CODE 77)

# The CSC with executor uws end to end over DDS: ocps-csc -> ocps-engine.
ocps_csc_test(test_ocps_uws ocps-csc ocpsiface)
target_link_libraries(test_ocps_uws PRIVATE uws_fixture PkgConfig::JANSSON)
target_compile_definitions(test_ocps_uws PRIVATE FAKE_PIPETASK="$<TARGET_FILE:fake-pipetask>")
add_dependencies(test_ocps_uws fake-pipetask)
set_tests_properties(test_ocps_uws PROPERTIES TIMEOUT 400 LABELS uws)

# test_csc_metrics (tests/CMakeLists.txt): the uws backend gauge against ocps-engine.
target_link_libraries(test_csc_metrics PRIVATE uws_fixture)

# The CSC's body for the reference server (uws_api: uws-api-server).
ocps_test_exe(test_ocps_uws_body ocpsapp)
add_test(NAME ocps_uws_body COMMAND test_ocps_uws_body)
set_tests_properties(ocps_uws_body PROPERTIES LABELS uws)

# uws_metrics: GET /metrics of a real ocps-engine read by an independent
# parser (prometheus_client, Debian's python3-prometheus-client).
# uws_status_page: the job status page in headless Chromium (Debian's
# chromium): the DOM of the list and of a job page, and a screenshot.
# Both run Debian's python3 (the packages are Debian ones); skipped (77)
# when the parser or chromium is missing.
find_program(OCPS_DEBIAN_PYTHON3 NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT OCPS_DEBIAN_PYTHON3)
  set(OCPS_DEBIAN_PYTHON3 "${Python3_EXECUTABLE}")
endif()
add_test(NAME uws_metrics COMMAND "${OCPS_DEBIAN_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/uws_observe.py"
  metrics "$<TARGET_FILE:ocps-engine>")
add_test(NAME uws_status_page COMMAND "${OCPS_DEBIAN_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/uws_observe.py"
  page "$<TARGET_FILE:ocps-engine>")
set_tests_properties(uws_metrics uws_status_page PROPERTIES TIMEOUT 300 LABELS "uws;deploy" SKIP_RETURN_CODE 77)
# uws_shutdown: SIGTERM under a stream of PUTs: every stored job was
# answered 200 and every 200 is stored (Debian's python3 only).
add_test(NAME uws_shutdown COMMAND "${OCPS_DEBIAN_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/uws_shutdown.py"
  "$<TARGET_FILE:ocps-engine>" 2)
set_tests_properties(uws_shutdown PROPERTIES TIMEOUT 300 LABELS uws)
# uws_drain: SIGTERM under --drain-timeout (a pod's graceful stop): the
# running job ends completed, PUT answered 503, the service exits when the
# job ends; a second signal, or the timeout, exits at once.
add_test(NAME uws_drain COMMAND "${OCPS_DEBIAN_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/uws_shutdown.py"
  "$<TARGET_FILE:ocps-engine>" drain)
set_tests_properties(uws_drain PROPERTIES TIMEOUT 120 LABELS uws)

# uws_job_text: the answer for one job written directly, as the job object's
# json_dumps.
ocps_test_exe(test_uws_job_text uws PkgConfig::JANSSON)
add_test(NAME uws_job_text COMMAND test_uws_job_text)
set_tests_properties(uws_job_text PROPERTIES LABELS uws)
