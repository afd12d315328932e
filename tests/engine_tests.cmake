# The job engine (processing/): real runner processes, a temporary store.
# Included by tests/CMakeLists.txt.
# The engine on a test's own loop, in a temporary directory (tests/support).
add_library(engine_fixture STATIC support/engine_fixture.c)
target_include_directories(engine_fixture PUBLIC support)
target_link_libraries(engine_fixture PUBLIC engine test_util PkgConfig::CMOCKA)

ocps_test_exe(test_engine engine_fixture)
target_compile_definitions(test_engine PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
add_dependencies(test_engine ocps-job-runner)
add_test(NAME engine COMMAND test_engine)
set_tests_properties(engine PROPERTIES TIMEOUT 120)

# A job refused for want of memory (calloc failing, through the linker's
# --wrap) is not stored.
ocps_test_exe(test_engine_oom engine_fixture)
target_compile_definitions(test_engine_oom PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
target_link_options(test_engine_oom PRIVATE "LINKER:--wrap=calloc")
add_test(NAME engine_oom COMMAND test_engine_oom)

# Prerequisites against their rules: random graphs, batches, aborts, restarts, start failures.
ocps_test_exe(test_engine_prereq engine_fixture)
target_compile_definitions(test_engine_prereq PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
add_dependencies(test_engine_prereq ocps-job-runner)
add_test(NAME engine_prereq COMMAND test_engine_prereq)
set_tests_properties(engine_prereq PROPERTIES TIMEOUT 300)

# ocps-job-runner run directly: output capture stays inside the job's directory.
ocps_test_exe(test_job_runner PkgConfig::JANSSON)
target_compile_definitions(test_job_runner PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
add_dependencies(test_job_runner ocps-job-runner)
# libfaketime (Debian's libfaketime) steps the wall clock of the runner
# (its dynamically linked build) in a_clock_step_does_not_stretch_the_duration.
find_library(OCPS_LIBFAKETIME NAMES libfaketime.so.1 faketime PATH_SUFFIXES faketime)
if(OCPS_LIBFAKETIME)
  add_dependencies(test_job_runner ocps-job-runner-dynamic)
  target_compile_definitions(test_job_runner PRIVATE OCPS_LIBFAKETIME="${OCPS_LIBFAKETIME}"
    OCPS_JOB_RUNNER_DYNAMIC="$<TARGET_FILE:ocps-job-runner-dynamic>")
endif()
# A claim's write failing in a job's second step (an LD_PRELOAD library on
# the dynamically linked runner): a_claim_failure_in_step_2_keeps_step_1.
add_library(claim_write_fails MODULE support/claim_write_fails.c)
target_link_libraries(claim_write_fails PRIVATE ${CMAKE_DL_LIBS})
# not instrumented: preloaded ahead of a sanitizer's runtime
target_compile_options(claim_write_fails PRIVATE -fno-sanitize=all)
target_link_options(claim_write_fails PRIVATE -fno-sanitize=all)
add_dependencies(test_job_runner ocps-job-runner-dynamic claim_write_fails)
target_compile_definitions(test_job_runner PRIVATE OCPS_JOB_RUNNER_DYNAMIC_BUILD="$<TARGET_FILE:ocps-job-runner-dynamic>"
  OCPS_CLAIM_WRITE_FAILS="$<TARGET_FILE:claim_write_fails>")
add_test(NAME job_runner COMMAND test_job_runner)

# Only live jobs in memory; history from the store; the retention policy.
ocps_test_exe(test_engine_history engine_fixture PkgConfig::SQLITE)
target_compile_definitions(test_engine_history PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
add_dependencies(test_engine_history ocps-job-runner)
add_test(NAME engine_history COMMAND test_engine_history)
set_tests_properties(engine_history PROPERTIES TIMEOUT 120)

# The judgement of `scontrol ping`'s answer (no cluster): a backup controller counts.
ocps_test_exe(test_slurm_ping engine)
add_test(NAME slurm_ping COMMAND test_slurm_ping)

# json_text: the store's and the API's JSON written as json_dumps would.
ocps_test_exe(test_json_text engine)
add_test(NAME engine_json_text COMMAND test_json_text)

# The work root on a mount that hangs like an unanswering NFS server
# (stallfs, built with libfuse3): the engine's loop keeps running and the
# job completes once the mount answers; skipped (77) where FUSE cannot mount.
if(TARGET stallfs_fixture)
  ocps_test_exe(test_engine_hung_mount engine_fixture stallfs_fixture)
  target_compile_definitions(test_engine_hung_mount PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
  add_dependencies(test_engine_hung_mount ocps-job-runner)
  add_test(NAME engine_hung_mount COMMAND test_engine_hung_mount)
  set_tests_properties(engine_hung_mount PROPERTIES TIMEOUT 60 SKIP_RETURN_CODE 77)
endif()
