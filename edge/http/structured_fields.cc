#include "edge/http/structured_fields.h"

namespace tern::edge::http::sf {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLcalpha(char c) { return c >= 'a' && c <= 'z'; }
bool isAlpha(char c) { return isLcalpha(c) || (c >= 'A' && c <= 'Z'); }
bool isTchar(char c) {
  return isAlpha(c) || isDigit(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
bool isBase64(char c) { return isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '='; }

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  std::optional<Dictionary> dictionary() {
    skipSp();
    Dictionary dict;
    while (!eof()) {
      auto key = parseKey();
      if (!key) return std::nullopt;
      Member member;
      if (peek() == '=') {
        ++i_;
        auto m = itemOrInnerList();
        if (!m) return std::nullopt;
        member = std::move(*m);
      } else {
        auto params = parameters();
        if (!params) return std::nullopt;
        member = Item{true, std::move(*params)};
      }
      bool replaced = false;
      for (auto& [k, v] : dict) {
        if (k == *key) {
          v = std::move(member);
          replaced = true;
          break;
        }
      }
      if (!replaced) dict.emplace_back(std::move(*key), std::move(member));
      skipOws();
      if (eof()) return dict;
      if (peek() != ',') return std::nullopt;
      ++i_;
      skipOws();
      if (eof()) return std::nullopt;  // trailing comma
    }
    return dict;  // empty
  }

 private:
  bool eof() const { return i_ >= s_.size(); }
  char peek() const { return eof() ? '\0' : s_[i_]; }
  void skipSp() {
    while (!eof() && s_[i_] == ' ') ++i_;
  }
  void skipOws() {
    while (!eof() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }

  std::optional<std::string> parseKey() {
    if (!(isLcalpha(peek()) || peek() == '*')) return std::nullopt;
    std::string key;
    while (!eof()) {
      char c = s_[i_];
      if (!(isLcalpha(c) || isDigit(c) || c == '_' || c == '-' || c == '.' || c == '*')) break;
      key.push_back(c);
      ++i_;
    }
    return key;
  }

  std::optional<Member> itemOrInnerList() {
    if (peek() == '(') {
      auto l = innerList();
      if (!l) return std::nullopt;
      return Member(std::move(*l));
    }
    auto it = item();
    if (!it) return std::nullopt;
    return Member(std::move(*it));
  }

  std::optional<InnerList> innerList() {
    ++i_;  // '('
    InnerList list;
    while (!eof()) {
      skipSp();
      if (peek() == ')') {
        ++i_;
        auto params = parameters();
        if (!params) return std::nullopt;
        list.params = std::move(*params);
        return list;
      }
      auto it = item();
      if (!it) return std::nullopt;
      list.items.push_back(std::move(*it));
      if (peek() != ' ' && peek() != ')') return std::nullopt;
    }
    return std::nullopt;  // no ')'
  }

  std::optional<Item> item() {
    auto v = bareItem();
    if (!v) return std::nullopt;
    auto params = parameters();
    if (!params) return std::nullopt;
    return Item{std::move(*v), std::move(*params)};
  }

  std::optional<Parameters> parameters() {
    Parameters params;
    while (peek() == ';') {
      ++i_;
      skipSp();
      auto key = parseKey();
      if (!key) return std::nullopt;
      BareItem value = true;
      if (peek() == '=') {
        ++i_;
        auto v = bareItem();
        if (!v) return std::nullopt;
        value = std::move(*v);
      }
      bool replaced = false;
      for (auto& [k, v] : params) {
        if (k == *key) {
          v = value;
          replaced = true;
        }
      }
      if (!replaced) params.emplace_back(std::move(*key), std::move(value));
    }
    return params;
  }

  std::optional<BareItem> bareItem() {
    const char c = peek();
    if (c == '-' || isDigit(c)) return number();
    if (c == '"') return string();
    if (c == ':') return byteSequence();
    if (c == '?') return boolean();
    if (c == '*' || isAlpha(c)) return token();
    return std::nullopt;
  }

  std::optional<BareItem> number() {
    bool negative = false;
    if (peek() == '-') {
      negative = true;
      ++i_;
    }
    if (!isDigit(peek())) return std::nullopt;
    std::string digits;
    bool decimal = false;
    while (!eof()) {
      char c = s_[i_];
      if (isDigit(c)) {
        digits.push_back(c);
      } else if (!decimal && c == '.') {
        if (digits.size() > 12) return std::nullopt;
        digits.push_back(c);
        decimal = true;
      } else {
        break;
      }
      ++i_;
      if (!decimal && digits.size() > 15) return std::nullopt;
      if (decimal && digits.size() > 16) return std::nullopt;
    }
    if (!decimal) {
      int64_t v = std::stoll(digits);
      return BareItem(negative ? -v : v);
    }
    if (digits.back() == '.') return std::nullopt;
    if (digits.size() - digits.find('.') - 1 > 3) return std::nullopt;
    double v = std::stod(digits);
    return BareItem(negative ? -v : v);
  }

  std::optional<BareItem> string() {
    ++i_;  // '"'
    std::string out;
    while (!eof()) {
      char c = s_[i_++];
      if (c == '\\') {
        if (eof()) return std::nullopt;
        char next = s_[i_++];
        if (next != '"' && next != '\\') return std::nullopt;
        out.push_back(next);
      } else if (c == '"') {
        return BareItem(std::move(out));
      } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) {
        return std::nullopt;
      } else {
        out.push_back(c);
      }
    }
    return std::nullopt;  // unterminated
  }

  std::optional<BareItem> token() {
    std::string out;
    while (!eof() && (isTchar(s_[i_]) || s_[i_] == ':' || s_[i_] == '/')) out.push_back(s_[i_++]);
    return BareItem(Token{std::move(out)});
  }

  std::optional<BareItem> byteSequence() {
    ++i_;  // ':'
    std::string out;
    while (!eof() && s_[i_] != ':') {
      if (!isBase64(s_[i_])) return std::nullopt;
      out.push_back(s_[i_++]);
    }
    if (eof()) return std::nullopt;
    ++i_;
    return BareItem(ByteSequence{std::move(out)});
  }

  std::optional<BareItem> boolean() {
    ++i_;  // '?'
    if (peek() == '1' || peek() == '0') return BareItem(s_[i_++] == '1');
    return std::nullopt;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::optional<Dictionary> parseDictionary(std::string_view value) {
  // Leading and trailing SP are discarded (RFC 8941 4.2); the rest must
  // parse to its end.
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return Parser(value).dictionary();
}

}  // namespace tern::edge::http::sf
