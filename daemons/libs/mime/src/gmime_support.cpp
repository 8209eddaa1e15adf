#include "gmime_support.hpp"

#include <mutex>

namespace hamail::mime::detail {

void ensure_gmime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

std::string decode_header_text(std::string_view raw) {
  ensure_gmime();
  const std::string s(raw.data(), raw.size());
  return take_string(g_mime_utils_header_decode_text(nullptr, s.c_str()));
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
        if (g_utf8_validate(out, -1, nullptr)) return std::string(out);
      }
    }
  }
  return take_string(g_mime_utils_decode_8bit(nullptr, text.data(), text.size()));
}

}  // namespace hamail::mime::detail
