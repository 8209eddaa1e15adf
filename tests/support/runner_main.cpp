// The main() every CppUnit test executable shares.
//
// Usage: <test> [test-name-prefix ...]   runs every registered test, or those
// whose full name ("suite::test") starts with one of the arguments.
// Prints one line per test and a closing "N passed, N failed" line; exits 1 on
// any failure.

#include <cppunit/BriefTestProgressListener.h>
#include <cppunit/CompilerOutputter.h>
#include <cppunit/Test.h>
#include <cppunit/TestResult.h>
#include <cppunit/TestResultCollector.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <csignal>
#include <iostream>
#include <string>
#include <vector>

namespace {

void collect(CppUnit::Test* test, const std::vector<std::string>& prefixes,
             std::vector<CppUnit::Test*>& out) {
  if (test->getChildTestCount() == 0) {
    const std::string name = test->getName();
    if (prefixes.empty()) {
      out.push_back(test);
      return;
    }
    for (const auto& p : prefixes) {
      if (name.compare(0, p.size(), p) == 0) {
        out.push_back(test);
        return;
      }
    }
    return;
  }
  for (int i = 0; i < test->getChildTestCount(); ++i)
    collect(test->getChildTestAt(i), prefixes, out);
}

}  // namespace

int main(int argc, char** argv) {
  // A test that writes to a closed socket must see EPIPE, not die.
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> prefixes(argv + 1, argv + argc);
  CppUnit::Test* root = CppUnit::TestFactoryRegistry::getRegistry().makeTest();
  std::vector<CppUnit::Test*> selected;
  collect(root, prefixes, selected);

  CppUnit::TestResult controller;
  CppUnit::TestResultCollector collector;
  controller.addListener(&collector);
  CppUnit::BriefTestProgressListener progress;
  controller.addListener(&progress);

  for (auto* t : selected) t->run(&controller);

  CppUnit::CompilerOutputter outputter(&collector, std::cerr);
  outputter.write();

  const int failed = collector.testFailuresTotal();
  const int run = collector.runTests();
  delete root;
  std::cerr << std::flush;
  std::cout << '\n' << (run - failed) << " passed, " << failed << " failed" << std::endl;
  if (run == 0) {
    std::cerr << "no test matched\n";
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
