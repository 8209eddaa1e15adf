#include "hamail/admin/output.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace hamail::admin {
namespace {

void newline(std::string& out, int indent) {
  out += '\n';
  out.append(static_cast<std::size_t>(indent) * 2, ' ');
}

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
overloaded(Ts...) -> overloaded<Ts...>;

}  // namespace

std::string json_quote(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string json_value::dump() const {
  std::string out;
  dump_to(out, 0);
  return out;
}

void json_value::dump_to(std::string& out, int indent) const {
  std::visit(overloaded{
                 [&](std::nullptr_t) { out += "null"; },
                 [&](bool b) { out += b ? "true" : "false"; },
                 [&](std::int64_t n) { out += std::to_string(n); },
                 [&](std::uint64_t n) { out += std::to_string(n); },
                 [&](double d) {
                   if (!std::isfinite(d)) {
                     out += "null";
                     return;
                   }
                   char buf[32];
                   std::snprintf(buf, sizeof buf, "%.6f", d);
                   out += buf;
                 },
                 [&](const std::string& s) { out += json_quote(s); },
                 [&](const array& a) {
                   if (a.empty()) {
                     out += "[]";
                     return;
                   }
                   out += '[';
                   for (std::size_t i = 0; i < a.size(); ++i) {
                     if (i > 0) out += ',';
                     newline(out, indent + 1);
                     a[i].dump_to(out, indent + 1);
                   }
                   newline(out, indent);
                   out += ']';
                 },
                 [&](const object& o) {
                   if (o.empty()) {
                     out += "{}";
                     return;
                   }
                   out += '{';
                   for (std::size_t i = 0; i < o.size(); ++i) {
                     if (i > 0) out += ',';
                     newline(out, indent + 1);
                     out += json_quote(o[i].first);
                     out += ": ";
                     o[i].second.dump_to(out, indent + 1);
                   }
                   newline(out, indent);
                   out += '}';
                 },
             },
             v_);
}

std::string format_table(const std::vector<std::string>& headers,
                         const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths(headers.size(), 0);
  for (std::size_t i = 0; i < headers.size(); ++i) widths[i] = headers[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string l;
    for (std::size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : std::string();
      l += cell;
      if (i + 1 < widths.size()) l.append(widths[i] - cell.size() + 2, ' ');
    }
    while (!l.empty() && l.back() == ' ') l.pop_back();
    out += l;
    out += '\n';
  };
  line(headers);
  for (const auto& row : rows) line(row);
  return out;
}

std::string format_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::size_t width = 0;
  for (const auto& f : fields) width = std::max(width, f.first.size());
  std::string out;
  for (const auto& [key, value] : fields) {
    out += key;
    out += ':';
    out.append(width - key.size() + 1, ' ');
    out += value;
    out += '\n';
  }
  return out;
}

}  // namespace hamail::admin
