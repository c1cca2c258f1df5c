# PostgreSQL integration tests. tests/integration/CMakeLists.txt builds
# test_store_pg (with its store_pg_*.c helpers, common_pg.c and the store
# conformance suite) like every test_*.c there; this file adds what is
# particular to it. Include it after that loop:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/pg.cmake)
# test_store_pg stops and starts the server of scripts/pg-start.sh (its
# connection-fault tests), so every test that uses that server must hold
# the same resource lock: ctest -j then never runs them side by side.
if(TEST test_store_pg)
  set_tests_properties(test_store_pg PROPERTIES
    LABELS "integration;postgres"
    RESOURCE_LOCK stele-postgres
    TIMEOUT 300)
endif()
if(TEST test_log_pg)
  set_tests_properties(test_log_pg PROPERTIES
    LABELS "integration;postgres" RESOURCE_LOCK stele-postgres TIMEOUT 300)
endif()
if(TEST test_engine_pg)
  set_tests_properties(test_engine_pg PROPERTIES
    LABELS "integration;postgres" RESOURCE_LOCK stele-postgres TIMEOUT 600)
endif()
