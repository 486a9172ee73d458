# tern_library(<name> SOURCES ... DEPS ...)
#   One static library per component. DEPS are PUBLIC so that the direction of
#   dependencies between components is visible here and nowhere else.
function(tern_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS} PRIVATE tern_warnings ${ARG_PRIVATE_DEPS})
endfunction()

# tern_test(<name> SOURCES ... DEPS ... [LABELS ...])
#   One GoogleTest binary per component; tests are discovered for CTest.
function(tern_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} tern_warnings GTest::gtest GTest::gmock GTest::gtest_main)
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  gtest_discover_tests(${name}
    DISCOVERY_TIMEOUT 60
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS}")
endfunction()
