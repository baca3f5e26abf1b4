# Finds what the build links against and turns each into an imported target.
# A missing dependency stops configuration with the Debian package to install,
# never with a compiler error wall later on.
#
#   psdm::apache     httpd + APR headers (apache2-dev), flags from apxs / apr-1-config
#   psdm::lws        libwebsockets (libwebsockets-dev)
#   psdm::rdkafka    librdkafka (librdkafka-dev), mock cluster header included
#   psdm::cjson      cJSON (libcjson-dev)
#   psdm::curl       libcurl (libcurl4-openssl-dev), the worker's http authz provider
#   psdm::uring      liburing (liburing-dev), the worker's batched fan-out sends
#   psdm::cmocka     CMocka (libcmocka-dev), only when tests are built

set(_psdm_missing "")

find_program(PKG_CONFIG_EXECUTABLE pkg-config)
if(NOT PKG_CONFIG_EXECUTABLE)
  message(FATAL_ERROR "pkg-config not found. Install the Debian package: pkg-config\n"
                      "  (or run 'make deps' as root, which installs everything the build needs)")
endif()
find_package(PkgConfig REQUIRED)

# psdm_require_pkg(<target> <pkg-config module> <debian package>)
function(psdm_require_pkg target module debpkg)
  pkg_check_modules(_${target} QUIET IMPORTED_TARGET GLOBAL ${module})
  if(_${target}_FOUND)
    add_library(psdm::${target} ALIAS PkgConfig::_${target})
  else()
    set(_psdm_missing "${_psdm_missing} ${debpkg}" PARENT_SCOPE)
  endif()
endfunction()

psdm_require_pkg(lws     libwebsockets libwebsockets-dev)
psdm_require_pkg(rdkafka rdkafka       librdkafka-dev)
psdm_require_pkg(cjson   libcjson      libcjson-dev)
psdm_require_pkg(curl    libcurl       libcurl4-openssl-dev)
psdm_require_pkg(uring   liburing      liburing-dev)

# Apache: headers only; the module is resolved against the running httpd at load time.
find_program(APXS_EXECUTABLE apxs PATHS /usr/bin)
find_program(APR_CONFIG_EXECUTABLE apr-1-config PATHS /usr/bin)
if(APXS_EXECUTABLE AND APR_CONFIG_EXECUTABLE)
  execute_process(COMMAND ${APXS_EXECUTABLE} -q INCLUDEDIR
                  OUTPUT_VARIABLE PSDM_HTTPD_INCLUDEDIR OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${APR_CONFIG_EXECUTABLE} --includedir
                  OUTPUT_VARIABLE PSDM_APR_INCLUDEDIR OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${APR_CONFIG_EXECUTABLE} --cppflags
                  OUTPUT_VARIABLE _apr_cppflags OUTPUT_STRIP_TRAILING_WHITESPACE)
  separate_arguments(_apr_cppflags UNIX_COMMAND "${_apr_cppflags}")
  add_library(psdm_apache INTERFACE)
  target_include_directories(psdm_apache SYSTEM INTERFACE ${PSDM_HTTPD_INCLUDEDIR} ${PSDM_APR_INCLUDEDIR})
  target_compile_options(psdm_apache INTERFACE ${_apr_cppflags})
  add_library(psdm::apache ALIAS psdm_apache)
else()
  set(_psdm_missing "${_psdm_missing} apache2-dev")
endif()

if(BUILD_TESTING OR NOT DEFINED BUILD_TESTING)
  psdm_require_pkg(cmocka cmocka libcmocka-dev)
endif()

if(_psdm_missing)
  string(STRIP "${_psdm_missing}" _psdm_missing)
  message(FATAL_ERROR "Missing build dependencies. Install the Debian package(s): ${_psdm_missing}\n"
                      "  apt-get install ${_psdm_missing}\n"
                      "  (or run 'make deps' as root, which installs everything the build and tests need)")
endif()
