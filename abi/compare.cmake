# cmake -DGENERATED=<build>/abi/stele-abi.txt -DRELEASED=<source>/abi -P
# compare.cmake: fails when this build's dump of the public headers differs
# from the released dump of the same ABI version, that is when a header
# changed the plugin surface without an ABI bump (docs/plugins.md).
file(STRINGS ${GENERATED} abi_line REGEX "^abi [0-9]+\\.[0-9]+$")
string(REGEX REPLACE "^abi " "" version "${abi_line}")
if(NOT version)
  message(FATAL_ERROR "${GENERATED}: no 'abi MAJOR.MINOR' line")
endif()
set(released ${RELEASED}/stele-abi-${version}.txt)
if(NOT EXISTS ${released})
  message(FATAL_ERROR
    "ABI ${version} has no dump in abi/: a new ABI version records its "
    "plugin surface when it is introduced:\n"
    "  cp ${GENERATED} ${released}\n"
    "and commit it with the headers (docs/plugins.md, \"Changing the ABI\").")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${released}
  ${GENERATED} RESULT_VARIABLE differ)
if(differ)
  execute_process(COMMAND diff -u ${released} ${GENERATED}
    OUTPUT_VARIABLE diff)
  message(FATAL_ERROR
    "the public headers (include/stele/) changed the plugin surface, but "
    "the ABI is still ${version}: plugins built against "
    "abi/stele-abi-${version}.txt would be refused, or worse, misread.\n"
    "Bump STELE_ABI_MINOR in include/stele/plugin.h (fields appended at "
    "the end of a struct) or STELE_ABI_MAJOR (anything else), rebuild, and "
    "add the new dump:\n"
    "  cp ${GENERATED} ${RELEASED}/stele-abi-<new version>.txt\n"
    "Never edit a released dump. The change:\n${diff}")
endif()
message(STATUS "plugin surface matches abi/stele-abi-${version}.txt")
