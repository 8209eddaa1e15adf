# format-check: fails when any project C++ file differs from .clang-format.
# format: rewrites them in place.

find_program(CLANG_FORMAT_EXE NAMES clang-format-14 clang-format)
file(GLOB_RECURSE hamail_format_files CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/daemons/*.cpp ${PROJECT_SOURCE_DIR}/daemons/*.hpp
     ${PROJECT_SOURCE_DIR}/resource-agents/*.cpp ${PROJECT_SOURCE_DIR}/resource-agents/*.hpp
     ${PROJECT_SOURCE_DIR}/tests/*.cpp ${PROJECT_SOURCE_DIR}/tests/*.hpp)

if(CLANG_FORMAT_EXE)
  add_custom_target(format-check
    COMMAND ${CLANG_FORMAT_EXE} --dry-run --Werror ${hamail_format_files}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    COMMENT "Checking C++ formatting against .clang-format"
    VERBATIM)
  add_custom_target(format
    COMMAND ${CLANG_FORMAT_EXE} -i ${hamail_format_files}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    VERBATIM)
endif()
