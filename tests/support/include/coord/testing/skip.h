// The end of the main() of a GoogleTest executable whose tests may skip
// themselves (GTEST_SKIP) because an optional tool is missing, such as Java
// and the ZooKeeper 3.8 jars. GoogleTest exits 0 when every test skipped, so
// ctest would report "Passed" for tests that never ran: exit_code() turns
// "nothing failed, something skipped" into skip_exit_code after printing
// each skipped test and its reason, and the ctest entry declares that code
// as its SKIP_RETURN_CODE (tests/CMakeLists.txt: COORD_TEST_SKIP_EXIT_CODE).
//   int main(int argc, char** argv) {
//     ::testing::InitGoogleTest(&argc, argv);
//     return coord::testing::exit_code(RUN_ALL_TESTS());
//   }
// Thread safety: call from main after the tests ran.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>

namespace coord::testing {

inline constexpr int skip_exit_code = 77;

inline int exit_code(int run_all_tests_result) {
  const ::testing::UnitTest& unit = *::testing::UnitTest::GetInstance();
  if (run_all_tests_result != 0 || unit.failed_test_count() > 0) return 1;
  if (unit.skipped_test_count() == 0) return 0;
  for (int s = 0; s < unit.total_test_suite_count(); ++s) {
    const ::testing::TestSuite& suite = *unit.GetTestSuite(s);
    for (int t = 0; t < suite.total_test_count(); ++t) {
      const ::testing::TestInfo& info = *suite.GetTestInfo(t);
      const ::testing::TestResult& result = *info.result();
      if (!info.should_run() || !result.Skipped()) continue;
      const char* why = "";
      for (int p = 0; p < result.total_part_count(); ++p) {
        if (result.GetTestPartResult(p).skipped()) why = result.GetTestPartResult(p).message();
      }
      std::printf("SKIPPED %s.%s: %s\n", suite.name(), info.name(), why);
    }
  }
  return skip_exit_code;
}

}  // namespace coord::testing
