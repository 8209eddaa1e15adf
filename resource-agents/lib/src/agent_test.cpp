#include "hamail/ocf/agent.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <string>

using namespace hamail::ocf;

using vars = std::map<std::string, std::string>;

namespace {

agent_spec sample() {
  agent_spec s;
  s.name = "sample";
  s.agent_version = "1.2";
  s.shortdesc = "a <sample> & more";
  s.longdesc = "long";
  s.parameters = {
      {"name", param_type::string, "", true, true, "Name", "The name."},
      {"count", param_type::integer, "3", false, false, "Count", "How many."},
      {"flag", param_type::boolean, "false", false, false, "Flag", "On or off."},
  };
  s.actions = {{"start", std::chrono::seconds(30), std::nullopt, std::nullopt},
               {"monitor", std::chrono::seconds(20), std::chrono::seconds(10), 10}};
  return s;
}

int call(const std::string& action, const environment& env, std::string* seen = nullptr,
         outcome result = outcome::success()) {
  std::map<std::string, handler> h = {{"start",
                                       [&](const context& c) {
                                         if (seen) *seen = c.params.str("name");
                                         return result;
                                       }},
                                      {"stop", [&](const context&) { return result; }},
                                      {"monitor", [&](const context&) { return result; }}};
  const char* argv[] = {"sample", action.c_str()};
  return run(sample(), h, 2, argv, env);
}

}  // namespace

class agent_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(agent_test);
  CPPUNIT_TEST(metadata_declares_version_1_1_and_dtd);
  CPPUNIT_TEST(metadata_escapes_and_lists_parameters_and_actions);
  CPPUNIT_TEST(parameters_get_defaults_and_types);
  CPPUNIT_TEST(missing_required_parameter_is_not_configured);
  CPPUNIT_TEST(wrong_types_are_not_configured);
  CPPUNIT_TEST(probe_and_stop_never_report_not_configured);
  CPPUNIT_TEST(dispatch_codes);
  CPPUNIT_TEST(meta_attributes_are_read);
  CPPUNIT_TEST(booleans);
  CPPUNIT_TEST_SUITE_END();

 public:
  void metadata_declares_version_1_1_and_dtd() {
    const std::string x = metadata_xml(sample());
    CPPUNIT_ASSERT(x.find("<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">") !=
                   std::string::npos);
    CPPUNIT_ASSERT(x.find("<version>1.1</version>") != std::string::npos);
    CPPUNIT_ASSERT(x.find("<resource-agent name=\"sample\" version=\"1.2\">") != std::string::npos);
  }

  void metadata_escapes_and_lists_parameters_and_actions() {
    const std::string x = metadata_xml(sample());
    CPPUNIT_ASSERT(x.find("a &lt;sample&gt; &amp; more") != std::string::npos);
    CPPUNIT_ASSERT(x.find("<parameter name=\"name\" unique=\"1\" required=\"1\">") !=
                   std::string::npos);
    CPPUNIT_ASSERT(x.find("<content type=\"integer\" default=\"3\" />") != std::string::npos);
    CPPUNIT_ASSERT(x.find("<content type=\"string\" />") != std::string::npos);
    CPPUNIT_ASSERT(
        x.find("<action name=\"monitor\" timeout=\"20s\" interval=\"10s\" depth=\"10\" />") !=
        std::string::npos);
    CPPUNIT_ASSERT(x.find("<action name=\"start\" timeout=\"30s\" />") != std::string::npos);
  }

  void parameters_get_defaults_and_types() {
    environment env(vars{{"OCF_RESKEY_name", "x"}, {"OCF_RESKEY_flag", "yes"}});
    parameters p;
    CPPUNIT_ASSERT(!parse_parameters(sample(), env, p));
    CPPUNIT_ASSERT_EQUAL(std::string("x"), p.str("name"));
    CPPUNIT_ASSERT_EQUAL(3LL, p.integer("count"));
    CPPUNIT_ASSERT(p.boolean("flag"));
    CPPUNIT_ASSERT(p.given("flag"));
    CPPUNIT_ASSERT(!p.given("count"));
  }

  void missing_required_parameter_is_not_configured() {
    parameters p;
    auto bad = parse_parameters(sample(), environment(), p);
    CPPUNIT_ASSERT(bad);
    CPPUNIT_ASSERT(bad->code == rc::err_configured);
    CPPUNIT_ASSERT(bad->reason.find("'name'") != std::string::npos);
    // An empty value is as good as missing.
    bad = parse_parameters(sample(), environment(vars{{"OCF_RESKEY_name", ""}}), p);
    CPPUNIT_ASSERT(bad && bad->code == rc::err_configured);
  }

  void wrong_types_are_not_configured() {
    parameters p;
    auto bad = parse_parameters(
        sample(), environment(vars{{"OCF_RESKEY_name", "x"}, {"OCF_RESKEY_count", "3x"}}), p);
    CPPUNIT_ASSERT(bad && bad->code == rc::err_configured);
    CPPUNIT_ASSERT(bad->reason.find("integer") != std::string::npos);
    bad = parse_parameters(
        sample(), environment(vars{{"OCF_RESKEY_name", "x"}, {"OCF_RESKEY_flag", "maybe"}}), p);
    CPPUNIT_ASSERT(bad && bad->code == rc::err_configured);
  }

  void probe_and_stop_never_report_not_configured() {
    const environment none;
    CPPUNIT_ASSERT_EQUAL(6, call("start", none));
    CPPUNIT_ASSERT_EQUAL(7, call("monitor", none));
    CPPUNIT_ASSERT_EQUAL(0, call("stop", none));
  }

  void dispatch_codes() {
    environment env(vars{{"OCF_RESKEY_name", "n1"}});
    std::string seen;
    CPPUNIT_ASSERT_EQUAL(0, call("start", env, &seen));
    CPPUNIT_ASSERT_EQUAL(std::string("n1"), seen);
    CPPUNIT_ASSERT_EQUAL(5, call("start", env, nullptr, fail(rc::err_installed, "gone")));
    CPPUNIT_ASSERT_EQUAL(3, call("promote", env));
    CPPUNIT_ASSERT_EQUAL(0, call("usage", env));
    const char* argv[] = {"sample"};
    CPPUNIT_ASSERT_EQUAL(2, run(sample(), {}, 1, argv, env));
  }

  void meta_attributes_are_read() {
    environment env(vars{{"OCF_RESKEY_name", "n"},
                         {"OCF_RESKEY_CRM_meta_timeout", "20000"},
                         {"OCF_RESKEY_CRM_meta_interval", "0"},
                         {"OCF_CHECK_LEVEL", "20"}});
    context seen;
    std::map<std::string, handler> h = {{"monitor", [&](const context& c) {
                                           seen = c;
                                           return outcome::success();
                                         }}};
    const char* argv[] = {"sample", "monitor"};
    CPPUNIT_ASSERT_EQUAL(0, run(sample(), h, 2, argv, env));
    CPPUNIT_ASSERT_EQUAL(20000LL, static_cast<long long>(seen.timeout.count()));
    CPPUNIT_ASSERT_EQUAL(20, seen.check_level);
    CPPUNIT_ASSERT(seen.is_probe());
    env.set("OCF_RESKEY_CRM_meta_interval", "10000");
    CPPUNIT_ASSERT_EQUAL(0, run(sample(), h, 2, argv, env));
    CPPUNIT_ASSERT(!seen.is_probe());
  }

  void booleans() {
    for (const char* t : {"1", "true", "YES", "on", "y"}) CPPUNIT_ASSERT(parse_boolean(t) == true);
    for (const char* f : {"0", "false", "No", "off", "n"})
      CPPUNIT_ASSERT(parse_boolean(f) == false);
    CPPUNIT_ASSERT(!parse_boolean("2"));
    CPPUNIT_ASSERT(!parse_boolean(""));
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(agent_test);
