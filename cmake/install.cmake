# What `cmake --install` puts in the prefix: the header, the shared library (versioned, with
# a SONAME) and the static one, the clopt program and its man page, a pkg-config file and a
# CMake package whose find_package(clopt) gives clopt::clopt (the shared library).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(FILES include/clopt.h include/clopt_external.h include/clopt_files.h include/clopt_tune.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS clopt_shared EXPORT cloptTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS clopt_lib ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS clopt RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(CLOPT_MANPAGE ${CMAKE_CURRENT_BINARY_DIR}/clopt.1)
add_custom_command(OUTPUT ${CLOPT_MANPAGE}
                   COMMAND ${CMAKE_COMMAND} -DCLOPT=$<TARGET_FILE:clopt> -DOUT=${CLOPT_MANPAGE}
                           -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/manpage.cmake
                   DEPENDS clopt ${CMAKE_CURRENT_SOURCE_DIR}/cmake/manpage.cmake
                   COMMENT "Writing the clopt(1) man page" VERBATIM)
add_custom_target(clopt_manpage ALL DEPENDS ${CLOPT_MANPAGE})
install(FILES ${CLOPT_MANPAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# The .pc file finds the prefix from its own place (pkg-config's ${pcfiledir}), so that
# `cmake --install build --prefix P` gives a P/.../pkgconfig/clopt.pc pointing into P, whatever
# CMAKE_INSTALL_PREFIX was when the build was configured.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(CLOPT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH CLOPT_PC_UP "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
  string(REGEX REPLACE "/$" "" CLOPT_PC_UP "${CLOPT_PC_UP}")
  set(CLOPT_PC_PREFIX "\${pcfiledir}/${CLOPT_PC_UP}")
endif()
configure_file(cmake/clopt.pc.in ${CMAKE_CURRENT_BINARY_DIR}/clopt.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/clopt.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(CLOPT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/clopt)
install(EXPORT cloptTargets NAMESPACE clopt:: DESTINATION ${CLOPT_CMAKE_DIR})
configure_package_config_file(cmake/cloptConfig.cmake.in
                              ${CMAKE_CURRENT_BINARY_DIR}/cloptConfig.cmake
                              INSTALL_DESTINATION ${CLOPT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/cloptConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/cloptConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/cloptConfigVersion.cmake
        DESTINATION ${CLOPT_CMAKE_DIR})
