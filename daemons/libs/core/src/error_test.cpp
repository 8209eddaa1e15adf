#include "hamail/core/error.hpp"

#include <cppunit/extensions/HelperMacros.h>

#include <set>
#include <string>

#include "hamail/core/result.hpp"

namespace {

using hamail::errc;
using hamail::error;
using hamail::error_kind;

class error_test : public CppUnit::TestFixture {
  CPPUNIT_TEST_SUITE(error_test);
  CPPUNIT_TEST(every_errc_has_a_distinct_name);
  CPPUNIT_TEST(kind_names_are_stable);
  CPPUNIT_TEST(temporary_factory_sets_kind_code_and_texts);
  CPPUNIT_TEST(permanent_factory_sets_kind_code_and_texts);
  CPPUNIT_TEST(internal_error_hides_detail_from_user_text);
  CPPUNIT_TEST(describe_includes_kind_code_user_text_and_detail);
  CPPUNIT_TEST(describe_omits_empty_detail);
  CPPUNIT_TEST(result_carries_value_or_error);
  CPPUNIT_TEST(result_void_defaults_to_success);
  CPPUNIT_TEST_SUITE_END();

 public:
  void every_errc_has_a_distinct_name() {
    const errc all[] = {errc::timed_out,         errc::shutting_down, errc::connection_closed,
                        errc::limit_exceeded,    errc::invalid_input, errc::not_found,
                        errc::already_exists,    errc::io_error,      errc::tls_error,
                        errc::config_error,      errc::unavailable,   errc::quota_exceeded,
                        errc::permission_denied, errc::internal};
    std::set<std::string_view> names;
    for (auto code : all) {
      const auto name = hamail::to_string(code);
      CPPUNIT_ASSERT(!name.empty());
      CPPUNIT_ASSERT(name != "unknown");
      names.insert(name);
    }
    CPPUNIT_ASSERT_EQUAL(std::size(all), names.size());
    CPPUNIT_ASSERT_EQUAL(std::string("config_error"),
                         std::string(hamail::to_string(errc::config_error)));
    CPPUNIT_ASSERT_EQUAL(std::string("timed_out"), std::string(hamail::to_string(errc::timed_out)));
  }

  void kind_names_are_stable() {
    CPPUNIT_ASSERT_EQUAL(std::string("temporary"),
                         std::string(hamail::to_string(error_kind::temporary)));
    CPPUNIT_ASSERT_EQUAL(std::string("permanent"),
                         std::string(hamail::to_string(error_kind::permanent)));
    CPPUNIT_ASSERT_EQUAL(std::string("internal"),
                         std::string(hamail::to_string(error_kind::internal)));
  }

  void temporary_factory_sets_kind_code_and_texts() {
    const auto e =
        error::temporary(errc::unavailable, "backend unavailable", "connect 10.0.0.5:143: refused");
    CPPUNIT_ASSERT(e.kind == error_kind::temporary);
    CPPUNIT_ASSERT(e.code == errc::unavailable);
    CPPUNIT_ASSERT(e.is_temporary());
    CPPUNIT_ASSERT(!e.is_permanent());
    CPPUNIT_ASSERT_EQUAL(std::string("backend unavailable"), e.user_text);
    CPPUNIT_ASSERT_EQUAL(std::string("connect 10.0.0.5:143: refused"), e.detail);
  }

  void permanent_factory_sets_kind_code_and_texts() {
    const auto e = error::permanent(errc::not_found, "no such mailbox");
    CPPUNIT_ASSERT(e.kind == error_kind::permanent);
    CPPUNIT_ASSERT(e.code == errc::not_found);
    CPPUNIT_ASSERT(e.is_permanent());
    CPPUNIT_ASSERT(!e.is_temporary());
    CPPUNIT_ASSERT_EQUAL(std::string("no such mailbox"), e.user_text);
    CPPUNIT_ASSERT(e.detail.empty());
  }

  void internal_error_hides_detail_from_user_text() {
    const auto e = error::internal_error("index /srv/store-a/u/42 uid 7 out of order");
    CPPUNIT_ASSERT(e.kind == error_kind::internal);
    CPPUNIT_ASSERT(e.code == errc::internal);
    CPPUNIT_ASSERT(!e.is_temporary());
    CPPUNIT_ASSERT(!e.is_permanent());
    CPPUNIT_ASSERT_EQUAL(std::string("internal server error"), e.user_text);
    CPPUNIT_ASSERT(e.user_text.find("/srv") == std::string::npos);
    CPPUNIT_ASSERT_EQUAL(std::string("index /srv/store-a/u/42 uid 7 out of order"), e.detail);
  }

  void describe_includes_kind_code_user_text_and_detail() {
    const auto e =
        error::temporary(errc::timed_out, "directory timeout", "ldap://10.0.0.2 after 5s");
    CPPUNIT_ASSERT_EQUAL(
        std::string("temporary/timed_out: directory timeout (ldap://10.0.0.2 after 5s)"),
        e.describe());
  }

  void describe_omits_empty_detail() {
    const auto e = error::permanent(errc::quota_exceeded, "over quota");
    CPPUNIT_ASSERT_EQUAL(std::string("permanent/quota_exceeded: over quota"), e.describe());
  }

  void result_carries_value_or_error() {
    hamail::result<int> good = 42;
    CPPUNIT_ASSERT(good.has_value());
    CPPUNIT_ASSERT_EQUAL(42, *good);
    hamail::result<int> bad = error::permanent(errc::invalid_input, "bad");
    CPPUNIT_ASSERT(!bad);
    CPPUNIT_ASSERT(bad.err().code == errc::invalid_input);
  }

  void result_void_defaults_to_success() {
    hamail::result<void> good = hamail::ok();
    CPPUNIT_ASSERT(good.has_value());
    hamail::result<void> bad = error::temporary(errc::io_error, "disk");
    CPPUNIT_ASSERT(!bad);
    CPPUNIT_ASSERT(bad.err().is_temporary());
  }
};

CPPUNIT_TEST_SUITE_REGISTRATION(error_test);

}  // namespace
