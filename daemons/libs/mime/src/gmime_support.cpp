#include "gmime_support.hpp"

#include <mutex>

#include "hamail/core/utf8.hpp"

namespace hamail::mime::detail {

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::string make_valid_utf8(std::string text) {
  if (is_valid_utf8(text)) return text;
  // GMime's own check lets some invalid sequences through (lead bytes above
  // U+10FFFF): replace whatever the strict validator refuses with U+FFFD.
  std::string out;
  out.reserve(text.size() + 8);
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t len = lead < 0x80    ? 1
                            : lead >= 0xF0 ? 4
                            : lead >= 0xE0 ? 3
                            : lead >= 0xC0 ? 2
                                           : 1;
    const std::string_view seq = std::string_view(text).substr(i, len);
    if (seq.size() == len && is_valid_utf8(seq)) {
      out.append(seq);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
  return out;
}

std::string decode_header_text(std::string_view raw) {
  ensure_gmime();
  const std::string s(raw.data(), raw.size());
  return make_valid_utf8(take_string(g_mime_utils_header_decode_text(nullptr, s.c_str())));
}

std::string to_utf8(std::string_view text, const std::string& charset) {
  ensure_gmime();
  if (!charset.empty()) {
    const char* name = g_mime_charset_iconv_name(charset.c_str());
    iconv_t cd = g_mime_iconv_open("UTF-8", name);
    if (cd != reinterpret_cast<iconv_t>(-1)) {
      char* out = g_mime_iconv_strndup(cd, text.data(), text.size());
      g_mime_iconv_close(cd);
      if (out != nullptr) {
        gchar_ptr owned(out);
        if (is_valid_utf8(out)) return std::string(out);
      }
    }
  }
  return make_valid_utf8(take_string(g_mime_utils_decode_8bit(nullptr, text.data(), text.size())));
}

}  // namespace hamail::mime::detail
