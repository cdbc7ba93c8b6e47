# clang-format and clang-tidy as tests (DESIGN.md §4: both run in CI). Registered only in
# builds that ask for them (the asan preset), so each runs once per `make test`.
option(PINHOLE_LINT "Add clang-format and clang-tidy checks to ctest" OFF)
if(PINHOLE_LINT)
  find_program(CLANG_FORMAT clang-format REQUIRED)
  find_program(CLANG_TIDY clang-tidy REQUIRED)
  file(GLOB_RECURSE PINHOLE_LINT_SOURCES CONFIGURE_DEPENDS
       ${CMAKE_SOURCE_DIR}/src/*.cc ${CMAKE_SOURCE_DIR}/src/*.h
       ${CMAKE_SOURCE_DIR}/tests/*.cc ${CMAKE_SOURCE_DIR}/tests/*.h
       ${CMAKE_SOURCE_DIR}/bench/*.cc ${CMAKE_SOURCE_DIR}/bench/*.h)
  add_test(NAME clang_format COMMAND ${CLANG_FORMAT} --dry-run --Werror ${PINHOLE_LINT_SOURCES})
  file(GLOB_RECURSE PINHOLE_TIDY_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/*.cc)
  add_test(NAME clang_tidy
           COMMAND ${CLANG_TIDY} -p ${CMAKE_BINARY_DIR} --quiet --warnings-as-errors=* ${PINHOLE_TIDY_SOURCES})
  set_tests_properties(clang_format clang_tidy PROPERTIES LABELS lint)
endif()
