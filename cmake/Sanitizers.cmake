# psdm_sanitizers: AddressSanitizer + UndefinedBehaviorSanitizer for the worker, the tools
# and the tests when PSDM_SANITIZE=ON (make test-asan uses a separate build directory).
#
# The Apache module is not sanitized: an ASan DSO inside a stock httpd would need libasan
# preloaded into apache2. The module's logic that can be tested in isolation lives in pure
# files that the unit tests compile with sanitizers.
option(PSDM_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)

add_library(psdm_sanitizers INTERFACE)
if(PSDM_SANITIZE)
  set(_psdm_san -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_compile_options(psdm_sanitizers INTERFACE ${_psdm_san})
  target_link_options(psdm_sanitizers INTERFACE ${_psdm_san})
endif()
