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
  # Plain message(): printed as it is, where FATAL_ERROR rewraps lines.
  message("ABI ${version} has no dump in abi/. A new ABI version records "
    "its plugin surface when it is introduced:\n"
    "  cp ${GENERATED} ${released}\n"
    "and commits it with the headers (docs/plugins.md, \"Changing the "
    "ABI\").")
  message(FATAL_ERROR "no abi/stele-abi-${version}.txt")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${released}
  ${GENERATED} RESULT_VARIABLE differ)
if(differ)
  message("The public headers (include/stele/) changed the plugin surface, "
    "but the ABI is still ${version}:\n")
  execute_process(COMMAND diff -u ${released} ${GENERATED})
  message("\nPlugins built against abi/stele-abi-${version}.txt would be "
    "refused, or worse, misread. Bump STELE_ABI_MINOR in "
    "include/stele/plugin.h (members appended at the end of a struct, new "
    "constants or typedefs) or STELE_ABI_MAJOR (anything else), rebuild, "
    "and add the new dump:\n"
    "  cp ${GENERATED} ${RELEASED}/stele-abi-<new version>.txt\n"
    "A released dump is never edited (docs/plugins.md, \"Changing the "
    "ABI\").")
  message(FATAL_ERROR "plugin surface differs from "
    "abi/stele-abi-${version}.txt without an ABI bump")
endif()
message(STATUS "plugin surface matches abi/stele-abi-${version}.txt")
