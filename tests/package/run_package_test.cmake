# ctest driver: install the already-built tree into a fresh prefix, configure and build the
# consumer project against it with the same compilers, run both consumers.
# Inputs (-D): BUILD_DIR, CONFIG, SOURCE_DIR (this directory), WORK_DIR, GENERATOR,
# MAKE_PROGRAM, C_COMPILER, CXX_COMPILER, EXTRA_FLAGS (e.g. sanitizer flags).
cmake_minimum_required(VERSION 3.25)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
  message("${out}")
endfunction()

set(prefix ${WORK_DIR}/prefix)
set(consumer_build ${WORK_DIR}/consumer)
file(REMOVE_RECURSE ${prefix} ${consumer_build})

run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix} --config "${CONFIG}")
foreach(f include/linattn/linattn.h include/linattn/linattn.hpp)
  if(NOT EXISTS ${prefix}/${f})
    message(FATAL_ERROR "install is missing ${f}")
  endif()
endforeach()

set(configure ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${consumer_build} -G "${GENERATOR}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=${CONFIG}
    -DCMAKE_C_COMPILER=${C_COMPILER} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
    -DCMAKE_C_FLAGS=${EXTRA_FLAGS} -DCMAKE_CXX_FLAGS=${EXTRA_FLAGS}
    -DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS})
if(MAKE_PROGRAM)
  list(APPEND configure -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
run(${configure})
run(${CMAKE_COMMAND} --build ${consumer_build} --config "${CONFIG}")
run(${consumer_build}/consumer_c)
run(${consumer_build}/consumer_cpp)
