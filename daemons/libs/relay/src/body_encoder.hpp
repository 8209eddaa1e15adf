#pragma once

// Internal to the relay client: turns body octets into what goes on the wire
// after DATA (dot-stuffed) or inside BDAT chunks (not stuffed). Both forms
// normalise line endings: a bare LF or a bare CR becomes CRLF, so DATA and
// BDAT carry the same message and the server's bare-LF/bare-CR checks never
// refuse it. Streaming: state carries across calls, so any split gives the
// same output.

#include <string>
#include <string_view>

namespace hamail::relay::detail {

class body_encoder {
 public:
  /// `dot_stuff`: double a '.' starting a line and end with ".\r\n" (DATA).
  explicit body_encoder(bool dot_stuff) : dot_stuff_(dot_stuff) {}

  /// Appends the wire form of `in` to `out`. A trailing CR is held until the
  /// next octet (or finish) tells whether it starts a CRLF.
  void encode(std::string_view in, std::string& out) {
    for (const char c : in) {
      if (pending_cr_) {
        pending_cr_ = false;
        out += "\r\n";
        line_start_ = true;
        if (c == '\n') continue;
      }
      if (c == '\r') {
        pending_cr_ = true;
      } else if (c == '\n') {
        out += "\r\n";
        line_start_ = true;
      } else {
        if (line_start_ && dot_stuff_ && c == '.') out += '.';
        out += c;
        line_start_ = false;
      }
    }
  }

  /// Appends what ends the body: the held CR as CRLF, a CRLF when the last
  /// line has none, and for DATA the ".\r\n" terminator. An empty body stays
  /// empty (DATA: just ".\r\n").
  void finish(std::string& out) {
    if (pending_cr_) {
      pending_cr_ = false;
      out += "\r\n";
      line_start_ = true;
    }
    if (!line_start_) {
      out += "\r\n";
      line_start_ = true;
    }
    if (dot_stuff_) out += ".\r\n";
  }

 private:
  bool dot_stuff_;
  bool line_start_ = true;
  bool pending_cr_ = false;
};

}  // namespace hamail::relay::detail
