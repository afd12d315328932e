# The Slurm executor on a real single-node cluster that the tests start
# themselves (tests/support/slurm_cluster.sh). ctest -L slurm runs them,
# one at a time (RESOURCE_LOCK): their clusters share munged's socket.
# Included by tests/CMakeLists.txt.
add_library(slurm_cluster STATIC support/slurm_cluster.c)
target_include_directories(slurm_cluster PUBLIC support)
target_link_libraries(slurm_cluster PUBLIC test_util)
target_compile_definitions(slurm_cluster PRIVATE
  OCPS_SLURM_CLUSTER_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/support/slurm_cluster.sh")

ocps_test_exe(test_engine_slurm engine_fixture slurm_cluster)
target_link_libraries(test_engine_slurm PRIVATE PkgConfig::SQLITE)
target_compile_definitions(test_engine_slurm PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
add_dependencies(test_engine_slurm ocps-job-runner)
add_test(NAME engine_slurm COMMAND test_engine_slurm)
set_tests_properties(engine_slurm PROPERTIES TIMEOUT 400 LABELS slurm RESOURCE_LOCK slurm_cluster)

# The DDS job tests (test_ocps_jobs) again with executor: slurm.
target_link_libraries(test_ocps_jobs PRIVATE slurm_cluster)
add_test(NAME test_ocps_jobs_slurm COMMAND test_ocps_jobs)
if(OCPS_TRANSPORT_DDS)
  set_tests_properties(test_ocps_jobs_slurm PROPERTIES ENVIRONMENT OCPS_TEST_EXECUTOR=slurm)
else()
  set_tests_properties(test_ocps_jobs_slurm PROPERTIES
    ENVIRONMENT "OCPS_TEST_EXECUTOR=slurm;OCPS_TEST_TRANSPORT=kafka")
endif()
set_tests_properties(test_ocps_jobs_slurm PROPERTIES TIMEOUT 400 LABELS slurm RESOURCE_LOCK slurm_cluster)

# The CSC when the controller fails: start refused while slurmctld is down,
# slurmctld killed and restarted while jobs run.
ocps_csc_test(test_ocps_slurm ocps-csc ocpsiface)
target_link_libraries(test_ocps_slurm PRIVATE slurm_cluster PkgConfig::JANSSON)
target_compile_definitions(test_ocps_slurm PRIVATE FAKE_PIPETASK="$<TARGET_FILE:fake-pipetask>")
add_dependencies(test_ocps_slurm fake-pipetask)
set_tests_properties(test_ocps_slurm PROPERTIES TIMEOUT 300 LABELS slurm RESOURCE_LOCK slurm_cluster)

# The Slurm executor with its work root on a mount that hangs like an
# unanswering NFS server (stallfs): the loop keeps running while a job is
# submitted, and the job completes once the mount answers; skipped (77)
# without Slurm, root or FUSE.
if(TARGET stallfs_fixture)
  ocps_test_exe(test_engine_slurm_hung_mount engine_fixture slurm_cluster stallfs_fixture)
  target_compile_definitions(test_engine_slurm_hung_mount PRIVATE
    OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
  add_dependencies(test_engine_slurm_hung_mount ocps-job-runner)
  add_test(NAME engine_slurm_hung_mount COMMAND test_engine_slurm_hung_mount)
  set_tests_properties(engine_slurm_hung_mount PROPERTIES
    TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS slurm RESOURCE_LOCK slurm_cluster)
endif()
