# linattn_npy: the .npy reader/writer of the command-line tool, a small static library so that
# tests can link it too (included from tools/ and, when the tools are not built, from tests/).
if(NOT TARGET linattn_npy)
  add_library(linattn_npy STATIC ${CMAKE_CURRENT_LIST_DIR}/npy.cpp)
  target_include_directories(linattn_npy PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                                                ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(linattn_npy PRIVATE -Wall -Wextra)
endif()
