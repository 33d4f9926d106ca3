#include "lib/store/metric_line.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace amlrun::store {

namespace {

// One line of a metrics file, read with nlohmann's SAX interface: no DOM is
// built, and keys other than name/value/step (and anything nested) are
// skipped, so writers may add fields.
class LineReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  enum class Field { none, name, value, step };
  enum class Kind { missing, good, bad, out_of_range };

  void reset() {
    m_depth = 0;
    m_top_is_object = false;
    m_field = Field::none;
    name_kind = value_kind = step_kind = Kind::missing;
    overflow = Overflow::none;
    name.clear();
  }

  bool null() override { return scalar_of_wrong_type(); }
  bool boolean(bool) override { return scalar_of_wrong_type(); }
  bool number_integer(number_integer_t number) override {
    return number_read(static_cast<double>(number), number >= 0, number);
  }
  bool number_unsigned(number_unsigned_t number) override {
    bool fits = number <= static_cast<number_unsigned_t>(std::numeric_limits<std::int64_t>::max());
    if (!fits && m_depth == 1 && m_field == Field::step) {
      take_field();
      step_kind = Kind::out_of_range;
      return true;
    }
    return number_read(static_cast<double>(number), fits,
                       fits ? static_cast<std::int64_t>(number) : 0);
  }
  bool number_float(number_float_t number, const string_t&) override {
    // A whole number past 2^63 - 1 (more digits than 64 bits hold are read
    // as a double) cannot be a step.
    if (m_depth == 1 && m_field == Field::step && number >= 9223372036854775808.0) {
      take_field();
      step_kind = Kind::out_of_range;
      return true;
    }
    // 120.0 is a fine step; 120.5 is not.
    bool integral = number >= 0 && number < 9007199254740992.0 && std::floor(number) == number;
    return number_read(number, integral, integral ? static_cast<std::int64_t>(number) : 0);
  }
  bool string(string_t& text) override {
    if (m_depth != 1) return true;
    switch (take_field()) {
      case Field::name:
        name = std::move(text);
        name_kind = Kind::good;
        break;
      case Field::value:
        value_kind = Kind::good;
        if (text == "NaN") {
          value = std::numeric_limits<double>::quiet_NaN();
        } else if (text == "Infinity") {
          value = std::numeric_limits<double>::infinity();
        } else if (text == "-Infinity") {
          value = -std::numeric_limits<double>::infinity();
        } else {
          value_kind = Kind::bad;
        }
        break;
      case Field::step:
        step_kind = Kind::bad;
        break;
      case Field::none:
        break;
    }
    return true;
  }
  bool binary(binary_t&) override { return scalar_of_wrong_type(); }
  bool start_object(std::size_t) override {
    if (m_depth == 0) m_top_is_object = true;
    if (m_depth == 1) mark_bad(take_field());
    ++m_depth;
    return true;
  }
  bool key(string_t& key) override {
    if (m_depth == 1) {
      m_field = key == "name"    ? Field::name
                : key == "value" ? Field::value
                : key == "step"  ? Field::step
                                 : Field::none;
    }
    return true;
  }
  bool end_object() override {
    --m_depth;
    return true;
  }
  bool start_array(std::size_t) override {
    if (m_depth == 1) mark_bad(take_field());
    ++m_depth;
    return true;
  }
  bool end_array() override {
    --m_depth;
    return true;
  }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    // 406: a number too large for a double (1e400, 400 digits). Inside the
    // object it is the line's one problem, worth naming; where it stood
    // says which.
    if (error.id == 406 && m_depth >= 1) {
      Field field = m_depth == 1 ? m_field : Field::none;
      overflow = field == Field::value  ? Overflow::value
                 : field == Field::step ? Overflow::step
                                        : Overflow::other;
    }
    return false;
  }

  bool top_is_object() const { return m_top_is_object; }

  enum class Overflow { none, value, step, other };
  Overflow overflow = Overflow::none;

  std::string name;
  Kind name_kind = Kind::missing;
  double value = 0;
  Kind value_kind = Kind::missing;
  std::int64_t step = 0;
  Kind step_kind = Kind::missing;

 private:
  Field take_field() {
    Field field = m_field;
    m_field = Field::none;
    return field;
  }
  void mark_bad(Field field) {
    if (field == Field::name) name_kind = Kind::bad;
    if (field == Field::value) value_kind = Kind::bad;
    if (field == Field::step) step_kind = Kind::bad;
  }
  bool scalar_of_wrong_type() {
    if (m_depth == 1) mark_bad(take_field());
    return true;
  }
  bool number_read(double number, bool is_step, std::int64_t as_step) {
    if (m_depth != 1) return true;
    switch (take_field()) {
      case Field::name:
        name_kind = Kind::bad;
        break;
      case Field::value:
        value = number;
        value_kind = Kind::good;
        break;
      case Field::step:
        step = as_step;
        step_kind = is_step ? Kind::good : Kind::bad;
        break;
      case Field::none:
        break;
    }
    return true;
  }

  int m_depth = 0;
  bool m_top_is_object = false;
  Field m_field = Field::none;
};

// A cursor over the canonical shape; every reader returns false as soon as
// the text is anything but plain, leaving it to the full parser.
class Canonical {
 public:
  explicit Canonical(std::string_view text) : m_text(text) {}

  bool read(MetricLine& out) {
    bool seen_name = false, seen_value = false, seen_step = false;
    skip_space();
    if (!take('{')) return false;
    skip_space();
    for (;;) {
      std::string_view key;
      if (!plain_string(key)) return false;
      skip_space();
      if (!take(':')) return false;
      skip_space();
      if (key == "name" && !seen_name) {
        std::string_view name;
        if (!plain_string(name)) return false;
        out.name.assign(name);
        seen_name = true;
      } else if (key == "value" && !seen_value) {
        if (!value(out.value)) return false;
        seen_value = true;
      } else if (key == "step" && !seen_step) {
        if (!step(out.step)) return false;
        seen_step = true;
      } else {
        return false;  // another key, or one given twice
      }
      skip_space();
      if (take('}')) break;
      if (!take(',')) return false;
      skip_space();
    }
    skip_space();
    out.has_step = seen_step;
    return m_at == m_text.size() && seen_name && seen_value;
  }

 private:
  void skip_space() {
    while (m_at < m_text.size() && (m_text[m_at] == ' ' || m_text[m_at] == '\t' ||
                                    m_text[m_at] == '\r' || m_text[m_at] == '\n')) {
      ++m_at;
    }
  }
  bool take(char c) {
    if (m_at < m_text.size() && m_text[m_at] == c) {
      ++m_at;
      return true;
    }
    return false;
  }
  // A string of printable ASCII without escapes.
  bool plain_string(std::string_view& out) {
    if (!take('"')) return false;
    std::size_t start = m_at;
    while (m_at < m_text.size()) {
      auto c = static_cast<unsigned char>(m_text[m_at]);
      if (c == '"') {
        out = m_text.substr(start, m_at - start);
        ++m_at;
        return true;
      }
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++m_at;
    }
    return false;
  }
  bool is_digit(std::size_t at) const {
    return at < m_text.size() && m_text[at] >= '0' && m_text[at] <= '9';
  }
  // JSON's number grammar; `integral` when it has no fraction or exponent.
  bool number_token(std::string_view& token, bool& integral) {
    std::size_t start = m_at;
    take('-');
    if (take('0')) {
    } else if (is_digit(m_at)) {
      while (is_digit(m_at)) ++m_at;
    } else {
      return false;
    }
    integral = true;
    if (take('.')) {
      if (!is_digit(m_at)) return false;
      while (is_digit(m_at)) ++m_at;
      integral = false;
    }
    if (take('e') || take('E')) {
      if (!take('+')) take('-');
      if (!is_digit(m_at)) return false;
      while (is_digit(m_at)) ++m_at;
      integral = false;
    }
    token = m_text.substr(start, m_at - start);
    return true;
  }
  // As nlohmann reads numbers: an integer that fits 64 bits is converted
  // from that integer (so "-0" is 0), anything else by correct rounding.
  bool value(double& out) {
    if (m_at < m_text.size() && m_text[m_at] == '"') {
      std::string_view text;
      if (!plain_string(text)) return false;
      if (text == "NaN") {
        out = std::numeric_limits<double>::quiet_NaN();
      } else if (text == "Infinity") {
        out = std::numeric_limits<double>::infinity();
      } else if (text == "-Infinity") {
        out = -std::numeric_limits<double>::infinity();
      } else {
        return false;
      }
      return true;
    }
    std::string_view token;
    bool integral = false;
    if (!number_token(token, integral)) return false;
    const char* first = token.data();
    const char* last = token.data() + token.size();
    if (integral) {
      if (token[0] == '-') {
        std::int64_t number = 0;
        if (std::from_chars(first, last, number).ec == std::errc()) {
          out = static_cast<double>(number);
          return true;
        }
      } else {
        std::uint64_t number = 0;
        if (std::from_chars(first, last, number).ec == std::errc()) {
          out = static_cast<double>(number);
          return true;
        }
      }
    }
    auto [end, error] = std::from_chars(first, last, out);
    return error == std::errc() && end == last && std::isfinite(out);
  }
  bool step(std::int64_t& out) {
    std::string_view token;
    bool integral = false;
    if (!number_token(token, integral) || !integral || token[0] == '-') return false;
    auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), out);
    return error == std::errc() && end == token.data() + token.size();
  }

  std::string_view m_text;
  std::size_t m_at = 0;
};

}  // namespace

bool read_canonical_metric_line(std::string_view line, MetricLine& out) {
  return Canonical(line).read(out);
}

LineVerdict read_metric_line_slowly(std::string_view line, MetricLine& out) {
  LineReader reader;
  reader.reset();
  bool parsed = nlohmann::json::sax_parse(line.data(), line.data() + line.size(), &reader);
  if (!parsed) {
    switch (reader.overflow) {
      case LineReader::Overflow::value:
        return LineVerdict::value_out_of_range;
      case LineReader::Overflow::step:
        return LineVerdict::step_out_of_range;
      case LineReader::Overflow::other:
        return LineVerdict::number_out_of_range;
      case LineReader::Overflow::none:
        break;
    }
    return LineVerdict::not_an_object;
  }
  if (!reader.top_is_object()) return LineVerdict::not_an_object;
  if (reader.name_kind != LineReader::Kind::good) return LineVerdict::no_name;
  if (reader.value_kind != LineReader::Kind::good) return LineVerdict::bad_value;
  if (reader.step_kind == LineReader::Kind::bad) return LineVerdict::bad_step;
  if (reader.step_kind == LineReader::Kind::out_of_range) return LineVerdict::step_out_of_range;
  out.name = std::move(reader.name);
  out.value = reader.value;
  out.has_step = reader.step_kind == LineReader::Kind::good;
  out.step = out.has_step ? reader.step : 0;
  return LineVerdict::ok;
}

LineVerdict read_metric_line(std::string_view line, MetricLine& out) {
  if (read_canonical_metric_line(line, out)) return LineVerdict::ok;
  return read_metric_line_slowly(line, out);
}

const char* describe(LineVerdict verdict) {
  switch (verdict) {
    case LineVerdict::ok:
      return "ok";
    case LineVerdict::not_an_object:
      return "not a JSON object";
    case LineVerdict::no_name:
      return "no \"name\" string";
    case LineVerdict::bad_value:
      return "\"value\" is not a number, \"NaN\", \"Infinity\" or \"-Infinity\"";
    case LineVerdict::bad_step:
      return "\"step\" is not a non-negative integer";
    case LineVerdict::value_out_of_range:
      return "\"value\" is a number out of range (beyond ±1.8e308; write \"Infinity\" or "
             "\"-Infinity\" for an infinite value)";
    case LineVerdict::step_out_of_range:
      return "\"step\" is out of range (at most 9223372036854775807)";
    case LineVerdict::number_out_of_range:
      return "a number out of range (beyond ±1.8e308)";
  }
  return "?";
}

}  // namespace amlrun::store
