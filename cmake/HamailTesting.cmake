# Test registration. Unit tests live beside the code as foo_test.cpp and are
# collected by hamail_add_library() without edits to any CMakeLists.txt.
#
# Labels: unit, integration, cluster, fuzz.

if(HAMAIL_BUILD_TESTS)
  enable_testing()
endif()

# hamail_add_test(NAME name SOURCES files... LIBS targets... LABELS labels...
#                 [TIMEOUT seconds])
# One CppUnit executable linked with the shared runner main, registered as one
# CTest test.
function(hamail_add_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT HAMAIL_BUILD_TESTS)
    return()
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE hamail_test_main ${T_LIBS} hamail_warnings)
  add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT})
endfunction()

# hamail_add_library(NAME name [DEPS targets...] [TEST_DEPS targets...])
# A library from the .cpp files in the calling directory's src/ (or the
# directory itself), public headers under include/. Every *_test.cpp beside the
# sources becomes a unit test labelled "unit".
function(hamail_add_library)
  cmake_parse_arguments(L "" "NAME" "DEPS;TEST_DEPS" ${ARGN})
  file(GLOB_RECURSE all_sources CONFIGURE_DEPENDS
       ${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp)
  set(lib_sources ${all_sources})
  list(FILTER lib_sources EXCLUDE REGEX "_test\\.cpp$")
  set(test_sources ${all_sources})
  list(FILTER test_sources INCLUDE REGEX "_test\\.cpp$")

  add_library(hamail_${L_NAME} STATIC ${lib_sources})
  add_library(hamail::${L_NAME} ALIAS hamail_${L_NAME})
  target_include_directories(hamail_${L_NAME}
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(hamail_${L_NAME} PUBLIC ${L_DEPS} PRIVATE hamail_warnings)

  if(NOT HAMAIL_BUILD_TESTS)
    return()
  endif()
  foreach(test_source IN LISTS test_sources)
    get_filename_component(test_name ${test_source} NAME_WE)
    hamail_add_test(NAME ${L_NAME}_${test_name}
      SOURCES ${test_source}
      LIBS hamail_${L_NAME} ${L_TEST_DEPS}
      LABELS unit)
    target_include_directories(${L_NAME}_${test_name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  endforeach()
endfunction()
