# edgelm_module(name DEPS ...): one static library per src/<name>, sources globbed.
# Headers are reached as "<name>/file.h" through a per-module include root in the build tree,
# so a module can only include headers of modules it links (wrong-way includes fail to build).
# A nested name such as runtime/update gives the target edgelm_runtime_update and headers
# included as "runtime/update/file.h".
function(edgelm_module name)
  cmake_parse_arguments(M "" "" "DEPS" ${ARGN})
  string(REPLACE "/" "_" tname ${name})
  file(GLOB_RECURSE srcs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cpp)
  set(inc ${CMAKE_BINARY_DIR}/modinc/${tname})
  get_filename_component(parent ${inc}/${name} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(NOT EXISTS ${inc}/${name})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${inc}/${name} SYMBOLIC)
  endif()
  if(srcs)
    add_library(edgelm_${tname} STATIC ${srcs})
    target_include_directories(edgelm_${tname} PUBLIC ${inc})
    target_link_libraries(edgelm_${tname} PUBLIC ${M_DEPS})
  else()  # module not written yet: headers only
    add_library(edgelm_${tname} INTERFACE)
    target_include_directories(edgelm_${tname} INTERFACE ${inc})
    target_link_libraries(edgelm_${tname} INTERFACE ${M_DEPS})
  endif()
endfunction()
