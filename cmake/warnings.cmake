# Warnings every pinhole target gets; the data plane must compile clean.
add_library(pinhole_warnings INTERFACE)
target_compile_options(pinhole_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wconversion -Wsign-conversion -Wnull-dereference
  -Wimplicit-fallthrough)
