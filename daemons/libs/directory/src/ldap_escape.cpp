#include "hamail/directory/ldap_escape.hpp"

#include <ldap.h>

#include <memory>
#include <new>
#include <vector>

#include "hamail/core/utf8.hpp"

namespace hamail::directory {

namespace {

bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  const auto lower = [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

struct dn_free {
  void operator()(LDAPDN dn) const noexcept { ldap_dnfree(dn); }
};
using parsed_dn = std::unique_ptr<LDAPRDN, dn_free>;

parsed_dn parse_dn(std::string_view text) {
  LDAPDN dn = nullptr;
  // ldap_bv2dn takes the length, so a NUL inside `text` cannot end it early.
  berval bv{static_cast<ber_len_t>(text.size()), const_cast<char*>(text.data())};
  if (ldap_bv2dn(&bv, &dn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
    if (dn != nullptr) ldap_dnfree(dn);
    return parsed_dn(nullptr);
  }
  return parsed_dn(dn);
}

}  // namespace

std::string escape_filter_value(std::string_view value) {
  if (value.empty()) return {};  // libldap answers an empty value with no buffer
  berval in{static_cast<ber_len_t>(value.size()), const_cast<char*>(value.data())};
  berval out{0, nullptr};
  if (ldap_bv2escaped_filter_value(&in, &out) != 0 || out.bv_val == nullptr) {
    // Only an allocation failure gets here; nothing safe can be returned instead.
    throw std::bad_alloc();
  }
  std::string escaped(out.bv_val, out.bv_len);
  ber_memfree(out.bv_val);
  return escaped;
}

std::optional<std::string> make_child_dn(std::string_view attribute, std::string_view value,
                                         std::string_view parent) {
  if (attribute.empty() || value.empty() || !is_valid_utf8(value)) return std::nullopt;
  parsed_dn parent_dn;
  if (!parent.empty()) {
    parent_dn = parse_dn(parent);
    if (!parent_dn) return std::nullopt;
  }
  LDAPAVA ava{};
  ava.la_attr =
      berval{static_cast<ber_len_t>(attribute.size()), const_cast<char*>(attribute.data())};
  ava.la_value = berval{static_cast<ber_len_t>(value.size()), const_cast<char*>(value.data())};
  ava.la_flags = LDAP_AVA_STRING;
  LDAPAVA* rdn[] = {&ava, nullptr};
  std::vector<LDAPRDN> dn{rdn};
  if (parent_dn) {
    for (LDAPRDN* r = parent_dn.get(); *r != nullptr; ++r) dn.push_back(*r);
  }
  dn.push_back(nullptr);
  berval out{0, nullptr};
  if (ldap_dn2bv(dn.data(), &out, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS || out.bv_val == nullptr) {
    return std::nullopt;
  }
  std::string text(out.bv_val, out.bv_len);
  ber_memfree(out.bv_val);
  return text;
}

std::optional<std::string> first_rdn_value(std::string_view dn, std::string_view attribute) {
  const parsed_dn parsed = parse_dn(dn);
  if (!parsed || parsed.get()[0] == nullptr) return std::nullopt;
  for (LDAPAVA** ava = parsed.get()[0]; *ava != nullptr; ++ava) {
    const std::string_view type((*ava)->la_attr.bv_val, (*ava)->la_attr.bv_len);
    if (iequals_ascii(type, attribute)) {
      return std::string((*ava)->la_value.bv_val, (*ava)->la_value.bv_len);
    }
  }
  return std::nullopt;
}

}  // namespace hamail::directory
