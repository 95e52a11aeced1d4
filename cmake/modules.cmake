# edgelm_module(name DEPS ...): one static library per src/<name>, sources globbed.
# Headers are reached as "<name>/file.h" through a per-module include root in the build tree,
# so a module can only include headers of modules it links (wrong-way includes fail to build).
function(edgelm_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  set(inc ${CMAKE_BINARY_DIR}/modinc/${name})
  file(MAKE_DIRECTORY ${inc})
  if(NOT EXISTS ${inc}/${name})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${inc}/${name} SYMBOLIC)
  endif()
  if(srcs)
    add_library(edgelm_${name} STATIC ${srcs})
    target_include_directories(edgelm_${name} PUBLIC ${inc})
    target_link_libraries(edgelm_${name} PUBLIC ${M_DEPS})
  else()  # module not written yet: headers only
    add_library(edgelm_${name} INTERFACE)
    target_include_directories(edgelm_${name} INTERFACE ${inc})
    target_link_libraries(edgelm_${name} INTERFACE ${M_DEPS})
  endif()
endfunction()
