# Copies an npm package's browser bundle into the build's vendored assets,
# as served to browsers: its license (MIT for tus-js-client) goes in front as
# a comment, since the bundle carries none, and the trailing sourceMappingURL
# comment goes (the map is not embedded, so it would point at a 404).
#
#   cmake -DPACKAGE=<node_modules/pkg> -DBUNDLE=<path in pkg> -DOUT=<file> -P web/vendor_bundle.cmake

cmake_minimum_required(VERSION 3.25)

foreach(var PACKAGE BUNDLE OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "vendor_bundle: -D${var}=... is required")
  endif()
endforeach()
if(NOT EXISTS "${PACKAGE}/${BUNDLE}" OR NOT EXISTS "${PACKAGE}/LICENSE")
  message(FATAL_ERROR "vendor_bundle: ${PACKAGE} has no ${BUNDLE} or LICENSE (did npm ci run?)")
endif()

file(READ "${PACKAGE}/package.json" manifest)
string(JSON name GET "${manifest}" name)
string(JSON version GET "${manifest}" version)
file(READ "${PACKAGE}/LICENSE" license)
string(REPLACE "*/" "* /" license "${license}")
file(READ "${PACKAGE}/${BUNDLE}" code)
string(REGEX REPLACE "\n//# sourceMappingURL=[^\n]*\n?$" "\n" code "${code}")

file(WRITE "${OUT}.tmp" "/*! ${name} ${version} (npm), embedded by upload-portal's build.\n\n${license}*/\n${code}")
file(RENAME "${OUT}.tmp" "${OUT}")
