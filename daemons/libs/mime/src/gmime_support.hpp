#pragma once

// RAII and one-time initialisation for the GMime calls this library makes.

#include <gmime/gmime.h>

#include <memory>
#include <string>
#include <string_view>

namespace hamail::mime::detail {

/// Calls g_mime_init() once per process, thread-safely.
void ensure_gmime();

struct gobject_unref {
  void operator()(gpointer p) const noexcept {
    if (p != nullptr) g_object_unref(p);
  }
};
struct g_free_deleter {
  void operator()(gpointer p) const noexcept { g_free(p); }
};

/// A GObject reference owned by the holder.
template <class T>
using gobject_ptr = std::unique_ptr<T, gobject_unref>;
/// A g_malloc'd C string owned by the holder.
using gchar_ptr = std::unique_ptr<char, g_free_deleter>;

/// Takes ownership of a g_malloc'd string; empty for nullptr.
inline std::string take_string(char* s) {
  gchar_ptr owned(s);
  return owned ? std::string(owned.get()) : std::string();
}

/// RFC 2047 decoding of an unstructured header value to UTF-8 (8-bit text is
/// charset-guessed by GMime).
std::string decode_header_text(std::string_view raw);

/// `text` unchanged when it is valid UTF-8, else with each invalid byte replaced by U+FFFD.
std::string make_valid_utf8(std::string text);

/// Converts `text` in `charset` to UTF-8; falls back to GMime's 8-bit guess.
std::string to_utf8(std::string_view text, const std::string& charset);

}  // namespace hamail::mime::detail
