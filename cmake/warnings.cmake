# Warnings every pinhole target gets; the data plane must compile clean.
add_library(pinhole_warnings INTERFACE)
target_compile_options(pinhole_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion -Wnull-dereference
  -Wimplicit-fallthrough)
# GCC 12 -O2 reports absl::InlinedVector's inline storage as "maybe uninitialized" when a small
# struct of them is returned by value (txn::Output); clang and the sanitizers see nothing.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(pinhole_warnings INTERFACE -Wno-maybe-uninitialized)
endif()
