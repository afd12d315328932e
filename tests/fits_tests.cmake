# FITS processing (processing/fits, issue 12): small synthetic raws, every
# task checked against the generator's truth. Included by tests/CMakeLists.txt.
ocps_test_exe(test_fits_fakeraws fitsproc)
target_compile_definitions(test_fits_fakeraws PRIVATE OCPS_FAKERAWS="$<TARGET_FILE:ocps-fakeraws>")
add_dependencies(test_fits_fakeraws ocps-fakeraws)
add_test(NAME fits_fakeraws COMMAND test_fits_fakeraws)

ocps_test_exe(test_fits_combine fitsproc)
add_test(NAME fits_combine COMMAND test_fits_combine)

# The comparator networks (an internal header of processing/fits).
ocps_test_exe(test_fits_network fitsproc)
target_include_directories(test_fits_network PRIVATE "${PROJECT_SOURCE_DIR}/processing/fits")
add_test(NAME fits_network COMMAND test_fits_network)

# The RICE_1 fast path against cfitsio's reading (an internal header).
ocps_test_exe(test_fits_rice fitsproc)
target_include_directories(test_fits_rice PRIVATE "${PROJECT_SOURCE_DIR}/processing/fits")
add_test(NAME fits_rice COMMAND test_fits_rice)

ocps_test_exe(test_fits_isr fitsproc)
add_test(NAME fits_isr COMMAND test_fits_isr)

ocps_test_exe(test_fits_quicklook fitsproc)
add_test(NAME fits_quicklook COMMAND test_fits_quicklook)

# Independent readers: astropy + numpy (tests/fits_check.py) and fitsverify;
# skipped (exit 77) where Debian's python3-astropy or fitsverify is missing.
ocps_test_exe(test_fits_independent fitsproc)
target_compile_definitions(test_fits_independent PRIVATE
  OCPS_FITS_CHECK="${CMAKE_CURRENT_SOURCE_DIR}/fits_check.py")
add_test(NAME fits_independent COMMAND test_fits_independent)
set_tests_properties(fits_independent PROPERTIES SKIP_RETURN_CODE 77)

# ocps-pipetask (processing/pipetask) as a separate process on a repository
# of --small raws: arguments, -c overrides, pipeline lookup, registration.
ocps_test_exe(test_pipetask_cli PkgConfig::JANSSON PkgConfig::SQLITE)
target_compile_definitions(test_pipetask_cli PRIVATE OCPS_PIPETASK="$<TARGET_FILE:ocps-pipetask>"
  OCPS_BUTLER="$<TARGET_FILE:ocps-butler>" OCPS_FAKERAWS="$<TARGET_FILE:ocps-fakeraws>")
add_dependencies(test_pipetask_cli ocps-pipetask ocps-butler ocps-fakeraws)
add_test(NAME pipetask_cli COMMAND test_pipetask_cli)
set_tests_properties(pipetask_cli PROPERTIES TIMEOUT 120)
