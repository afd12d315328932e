# butler-lite (processing/butler): the query language, the repository and
# the ocps-butler command line. Included by tests/CMakeLists.txt.
add_library(butler_fakeraw STATIC support/butler_fakeraw.c)
target_include_directories(butler_fakeraw PUBLIC support)
target_link_libraries(butler_fakeraw PUBLIC PkgConfig::CFITSIO)

ocps_test_exe(test_butler_query butler)
add_test(NAME butler_query COMMAND test_butler_query)

ocps_test_exe(test_butler_repo butler butler_fakeraw PkgConfig::SQLITE)
add_test(NAME butler_repo COMMAND test_butler_repo)
set_tests_properties(butler_repo PROPERTIES TIMEOUT 60)

ocps_test_exe(test_butler_cli butler_fakeraw)
target_compile_definitions(test_butler_cli PRIVATE OCPS_BUTLER="$<TARGET_FILE:ocps-butler>")
add_dependencies(test_butler_cli ocps-butler)
add_test(NAME butler_cli COMMAND test_butler_cli)
set_tests_properties(butler_cli PROPERTIES TIMEOUT 60)
