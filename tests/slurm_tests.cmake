# The Slurm executor on a real single-node cluster that the tests start
# themselves (tests/support/slurm_cluster.sh). ctest -L slurm runs them.
# Included by tests/CMakeLists.txt.
add_library(slurm_cluster STATIC support/slurm_cluster.c)
target_include_directories(slurm_cluster PUBLIC support)
target_link_libraries(slurm_cluster PUBLIC test_util)
target_compile_definitions(slurm_cluster PRIVATE
  OCPS_SLURM_CLUSTER_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/support/slurm_cluster.sh")

ocps_test_exe(test_engine_slurm engine slurm_cluster)
target_compile_definitions(test_engine_slurm PRIVATE OCPS_JOB_RUNNER="$<TARGET_FILE:ocps-job-runner>")
add_dependencies(test_engine_slurm ocps-job-runner)
add_test(NAME engine_slurm COMMAND test_engine_slurm)
set_tests_properties(engine_slurm PROPERTIES TIMEOUT 240 LABELS slurm)
