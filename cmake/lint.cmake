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
  # run-clang-tidy checks the files in parallel (one clang-tidy over every source took over 15
  # minutes of one core once the daemon's layers existed); it fails when any file has an error.
  # Its file arguments are regular expressions over the compile database: every TU under src/.
  # Warnings are errors through .clang-tidy (WarningsAsErrors), as run-clang-tidy 14 has no flag.
  find_program(RUN_CLANG_TIDY NAMES run-clang-tidy-14 run-clang-tidy REQUIRED)
  cmake_host_system_information(RESULT PINHOLE_TIDY_JOBS QUERY NUMBER_OF_LOGICAL_CORES)
  add_test(NAME clang_tidy
           COMMAND ${RUN_CLANG_TIDY} -clang-tidy-binary ${CLANG_TIDY} -p ${CMAKE_BINARY_DIR} -j ${PINHOLE_TIDY_JOBS}
                   -quiet ${CMAKE_SOURCE_DIR}/src/)
  set_tests_properties(clang_format clang_tidy PROPERTIES LABELS lint)
endif()
