# Helpers that declare every part of coord the same short way.
#
#   coord_library(<part> SOURCES ... [DEPS ...] [PRIVATE_DEPS ...])
#       A library coord_<part> (alias coord::<part>) with public headers in
#       <part>/include/coord/<part>/ and private sources in <part>/src/.
#   coord_test(<name> LABEL unit|sim|integration|fuzz SOURCES ... [DEPS ...]
#              [TIMEOUT seconds] [ENVIRONMENT VAR=value ...])
#       One GoogleTest executable, each of its tests registered with ctest.
#   coord_fuzz(<name> SOURCES ... [DEPS ...] [RUNS n])
#       A fuzz target defining LLVMFuzzerTestOneInput. With COORD_FUZZ=ON it
#       links libFuzzer; otherwise it links a deterministic driver that feeds
#       it random and mutated inputs. Either way ctest runs it for a fixed
#       number of inputs under the label `fuzz`.
#   coord_program(<name> SOURCES ... [DEPS ...])
#       An executable named <name>.

include_guard(GLOBAL)
include(GoogleTest)

add_library(coord_build_flags INTERFACE)
target_compile_options(coord_build_flags INTERFACE -Wall -Wextra -Werror)
if(COORD_SANITIZE)
  target_compile_options(coord_build_flags INTERFACE -fsanitize=${COORD_SANITIZE}
                                                     -fno-omit-frame-pointer)
  target_link_options(coord_build_flags INTERFACE -fsanitize=${COORD_SANITIZE})
  if(COORD_SANITIZE MATCHES "undefined")
    target_compile_options(coord_build_flags INTERFACE -fno-sanitize-recover=undefined)
  endif()
  if(COORD_SANITIZE_SKIP)
    target_compile_options(coord_build_flags INTERFACE -fno-sanitize=${COORD_SANITIZE_SKIP})
  endif()
endif()

function(coord_library part)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target coord_${part})
  string(REPLACE "-" "_" target ${target})
  add_library(${target} ${ARG_SOURCES})
  add_library(coord::${part} ALIAS ${target})
  target_include_directories(${target} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                             PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(${target} PUBLIC ${ARG_DEPS} coord_build_flags PRIVATE ${ARG_PRIVATE_DEPS})
endfunction()

function(coord_test name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;DEPS;ENVIRONMENT" ${ARGN})
  if(NOT ARG_LABEL MATCHES "^(unit|sim|integration|fuzz)$")
    message(FATAL_ERROR "coord_test(${name}): LABEL must be unit, sim, integration or fuzz")
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main
                                        coord_build_flags)
  target_compile_definitions(${name}
                             PRIVATE COORD_TEST_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
  gtest_discover_tests(
    ${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT} ENVIRONMENT "${ARG_ENVIRONMENT}")
endfunction()

function(coord_fuzz name)
  cmake_parse_arguments(ARG "" "RUNS;CORPUS;CORPUS_RUNS;MAX_LEN" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_RUNS)
    set(ARG_RUNS 20000)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} coord_build_flags)
  if(COORD_FUZZ)
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer)
    add_test(NAME ${name} COMMAND ${name} -runs=${ARG_RUNS} -seed=1)
  else()
    target_link_libraries(${name} PRIVATE coord_fuzz_driver)
    add_test(NAME ${name} COMMAND ${name} --runs=${ARG_RUNS} --seed=1)
  endif()
  set_tests_properties(${name} PROPERTIES LABELS fuzz TIMEOUT 300)
  if(NOT ARG_CORPUS)
    return()
  endif()
  # ${name}_corpus: the same target started from its seed corpus.
  if(NOT ARG_CORPUS_RUNS)
    set(ARG_CORPUS_RUNS 3000)
  endif()
  if(COORD_FUZZ)
    set(len_flag)
    if(ARG_MAX_LEN)
      set(len_flag -max_len=${ARG_MAX_LEN})
    endif()
    # libFuzzer adds what it finds to its first corpus directory: keep that
    # one in the build tree, never in the sources.
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${name}_found)
    add_test(NAME ${name}_corpus
             COMMAND ${name} -runs=${ARG_CORPUS_RUNS} -seed=2 ${len_flag}
                     ${CMAKE_CURRENT_BINARY_DIR}/${name}_found ${ARG_CORPUS})
  else()
    set(len_flag)
    if(ARG_MAX_LEN)
      set(len_flag --max-len=${ARG_MAX_LEN})
    endif()
    add_test(NAME ${name}_corpus
             COMMAND ${name} --runs=${ARG_CORPUS_RUNS} --seed=2 ${len_flag} ${ARG_CORPUS})
  endif()
  set_tests_properties(${name}_corpus PROPERTIES LABELS fuzz TIMEOUT 300)
endfunction()

function(coord_program name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} coord_build_flags)
endfunction()
