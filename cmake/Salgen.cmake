# salgen_component(<target> XML_DIR <dir> COMPONENT <name> XML_VERSION <ver>)
#
# Runs idl/salgen.py on a ts_xml-format directory, compiles the resulting
# sal_revCoded_<name>.idl with idlc, and builds a static library <target>
# holding the idlc types and the runtime's sal_component_info table.
# Sets <target>_GEN_DIR in the caller's scope to the generator's output.
function(salgen_component target)
  cmake_parse_arguments(SG "" "XML_DIR;COMPONENT;XML_VERSION" "" ${ARGN})
  set(gen "${CMAKE_CURRENT_BINARY_DIR}/${target}")
  set(n "${SG_COMPONENT}")
  file(GLOB_RECURSE xml_inputs CONFIGURE_DEPENDS "${SG_XML_DIR}/SAL*.xml" "${SG_XML_DIR}/${n}/*.xml")
  add_custom_command(
    OUTPUT "${gen}/dds/sal_revCoded_${n}.idl" "${gen}/c/${n}_sal.c" "${gen}/c/${n}_sal.h"
    COMMAND "${Python3_EXECUTABLE}" "${CMAKE_SOURCE_DIR}/idl/salgen.py"
            --xml-dir "${SG_XML_DIR}" --component "${n}"
            --xml-version "${SG_XML_VERSION}" --out "${gen}"
    DEPENDS "${CMAKE_SOURCE_DIR}/idl/salgen.py" ${xml_inputs}
    COMMENT "salgen ${n} from ${SG_XML_DIR}"
    VERBATIM)
  add_custom_command(
    OUTPUT "${gen}/c/sal_revCoded_${n}.c" "${gen}/c/sal_revCoded_${n}.h"
    COMMAND "${OCPS_IDLC}" -Wno-implicit-extensibility -o "${gen}/c" "${gen}/dds/sal_revCoded_${n}.idl"
    DEPENDS "${gen}/dds/sal_revCoded_${n}.idl"
    COMMENT "idlc sal_revCoded_${n}.idl"
    VERBATIM)
  add_library(${target} STATIC
    "${gen}/c/${n}_sal.c" "${gen}/c/sal_revCoded_${n}.c")
  target_include_directories(${target} PUBLIC "${gen}/c")
  target_link_libraries(${target} PUBLIC salrt CycloneDDS::ddsc)
  set(${target}_GEN_DIR "${gen}" PARENT_SCOPE)
endfunction()
