# ASan + UBSan for the `asan` preset; the `fuzz` preset adds libFuzzer to the fuzz targets only.
if(PINHOLE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
if(PINHOLE_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "PINHOLE_FUZZ needs clang (libFuzzer); use the asan or fuzz preset")
endif()
