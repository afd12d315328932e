# FITS processing (processing/fits, issue 12): small synthetic raws, every
# task checked against the generator's truth. Included by tests/CMakeLists.txt.
ocps_test_exe(test_fits_fakeraws fitsproc)
target_compile_definitions(test_fits_fakeraws PRIVATE OCPS_FAKERAWS="$<TARGET_FILE:ocps-fakeraws>")
add_dependencies(test_fits_fakeraws ocps-fakeraws)
add_test(NAME fits_fakeraws COMMAND test_fits_fakeraws)

ocps_test_exe(test_fits_combine fitsproc)
add_test(NAME fits_combine COMMAND test_fits_combine)

ocps_test_exe(test_fits_isr fitsproc)
add_test(NAME fits_isr COMMAND test_fits_isr)
