// Search-space expressions (expression.hpp): the expression table, the parser of the native text form, the checks
// of every expression's arguments (build_parameter, shared with the az form in config.cpp) and the parameter's
// recorded form.
#include "amlc/sweep/expression.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "amlc/core/error.hpp"
#include "amlc/core/util.hpp"

namespace amlc::sweep {

namespace {

struct ExprInfo {
  ExprKind kind;
  const char* name;
  const char* signature;
};

const ExprInfo kExprs[] = {
    {ExprKind::Choice, "choice", "choice(option, ...)"},
    {ExprKind::RandInt, "randint", "randint(upper)"},
    {ExprKind::Uniform, "uniform", "uniform(lo, hi)"},
    {ExprKind::QUniform, "quniform", "quniform(lo, hi, q)"},
    {ExprKind::LogUniform, "loguniform", "loguniform(lo, hi)"},
    {ExprKind::QLogUniform, "qloguniform", "qloguniform(lo, hi, q)"},
    {ExprKind::Normal, "normal", "normal(mu, sigma)"},
    {ExprKind::QNormal, "qnormal", "qnormal(mu, sigma, q)"},
    {ExprKind::LogNormal, "lognormal", "lognormal(mu, sigma)"},
    {ExprKind::QLogNormal, "qlognormal", "qlognormal(mu, sigma, q)"},
};

const ExprInfo& info(ExprKind k) {
  for (const auto& e : kExprs)
    if (e.kind == k) return e;
  return kExprs[0];
}

std::vector<std::string> expr_names() {
  std::vector<std::string> out;
  for (const auto& e : kExprs) out.push_back(e.name);
  return out;
}

// ---- native expression parser: name(arg, ...) with numbers, quoted or bare strings, [lists], range() ----
class ExprParser {
 public:
  ExprParser(const config::Document& doc, std::string pointer, std::string text)
      : doc_(doc), pointer_(std::move(pointer)), text_(std::move(text)) {}

  void parse(Parameter& out) {
    skip_ws();
    std::string name = ident();
    if (name.empty()) fail_at("expected an expression such as uniform(0.05, 0.1) or choice(16, 32)");
    ExprKind kind = expression_kind(doc_, pointer_, name);
    skip_ws();
    expect('(');
    std::vector<ExprArg> args = arg_list(')');
    skip_ws();
    if (pos_ != text_.size()) fail_at("unexpected text after the closing ')'");
    out.kind = kind;
    build_parameter(doc_, pointer_, out, args);
  }

 private:
  [[noreturn]] void fail_at(const std::string& msg) {
    std::string shown = text_.size() <= 80 ? text_ : text_.substr(0, 77) + "...";
    doc_.error(pointer_, msg + " (at character " + std::to_string(pos_ + 1) + " of '" + shown + "')");
  }
  // Every value counts toward kMaxExpressionValues. Every '[' or range( is one level: at most kMaxExpressionDepth
  // for the options plus one for a list argument that holds them (build_parameter checks the options themselves).
  void count_values(size_t n) {
    values_ += n;
    if (values_ > kMaxExpressionValues)
      fail_at("the expression has more than " + std::to_string(kMaxExpressionValues) + " values");
  }
  void enter() {
    if (++depth_ > kMaxExpressionDepth + 1)
      fail_at("the expression is nested deeper than " + std::to_string(kMaxExpressionDepth) + " levels");
  }
  void skip_ws() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool peek(char c) {
    skip_ws();
    return pos_ < text_.size() && text_[pos_] == c;
  }
  void expect(char c) {
    skip_ws();
    if (pos_ >= text_.size() || text_[pos_] != c) fail_at(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string ident() {
    size_t start = pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_')) ++pos_;
    return text_.substr(start, pos_ - start);
  }
  std::vector<ExprArg> arg_list(char close) {
    std::vector<ExprArg> args;
    if (peek(close)) {
      ++pos_;
      return args;
    }
    for (;;) {
      args.push_back(arg());
      skip_ws();
      if (peek(',')) {
        ++pos_;
        if (peek(close)) {  // trailing comma
          ++pos_;
          return args;
        }
        continue;
      }
      if (peek(close)) {
        ++pos_;
        return args;
      }
      fail_at(std::string("expected ',' or '") + close + "'");
    }
  }
  ExprArg arg() {
    skip_ws();
    if (pos_ >= text_.size()) fail_at("unexpected end of the expression");
    count_values(1);
    char c = text_[pos_];
    if (c == '[') {
      enter();
      ++pos_;
      std::vector<ExprArg> items = arg_list(']');
      --depth_;
      json arr = json::array();
      for (auto& a : items) arr.push_back(std::move(a.value));
      return {arr, true};
    }
    if (c == '"' || c == '\'') {
      size_t start = ++pos_;
      while (pos_ < text_.size() && text_[pos_] != c) ++pos_;
      if (pos_ >= text_.size()) fail_at("unterminated string");
      std::string s = text_.substr(start, pos_ - start);
      ++pos_;
      return {json(s), false};
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') return {number(), false};
    std::string word = ident();
    if (word.empty()) fail_at(std::string("unexpected character '") + c + "'");
    if (word == "range" && peek('(')) {
      enter();
      ++pos_;
      std::vector<ExprArg> ra = arg_list(')');
      --depth_;
      json arr = range(ra);
      count_values(arr.size());
      return {arr, true};
    }
    if (word == "True" || word == "true") return {json(true), false};
    if (word == "False" || word == "false") return {json(false), false};
    if (word == "None" || word == "null") return {json(nullptr), false};
    return {json(word), false};  // bare word: a string option (choice(adam, sgd))
  }
  json number() {
    size_t start = pos_;
    if (text_[pos_] == '-' || text_[pos_] == '+') ++pos_;
    while (pos_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '.' ||
                                   ((text_[pos_] == '-' || text_[pos_] == '+') && (text_[pos_ - 1] == 'e' || text_[pos_ - 1] == 'E'))))
      ++pos_;
    std::string s = text_.substr(start, pos_ - start);
    if (!s.empty() && s[0] == '+') s.erase(0, 1);
    long long i = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
    if (ec == std::errc() && p == s.data() + s.size()) return json(i);
    double d = 0;
    auto [p2, ec2] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (ec2 == std::errc() && p2 == s.data() + s.size() && std::isfinite(d)) return json(d);
    pos_ = start;
    fail_at("'" + s + "' is not a number");
  }
  json range(const std::vector<ExprArg>& ra) {
    if (ra.empty() || ra.size() > 3) fail_at("range() takes 1 to 3 integer arguments");
    long long v[3] = {0, 0, 1};
    for (size_t k = 0; k < ra.size(); ++k) {
      if (!ra[k].value.is_number_integer()) fail_at("range() arguments must be integers");
      v[k] = ra[k].value.get<long long>();
    }
    long long start = ra.size() == 1 ? 0 : v[0], stop = ra.size() == 1 ? v[0] : v[1], step = ra.size() == 3 ? v[2] : 1;
    if (step == 0) fail_at("range() step must not be zero");
    // The number of values, computed without overflow (range(9223372036854775800, 9223372036854775807, 5)).
    using u64 = unsigned long long;
    u64 count = 0;
    if (step > 0 && start < stop) count = (static_cast<u64>(stop) - static_cast<u64>(start) - 1) / static_cast<u64>(step) + 1;
    if (step < 0 && start > stop) count = (static_cast<u64>(start) - static_cast<u64>(stop) - 1) / (0 - static_cast<u64>(step)) + 1;
    if (count > kMaxExpressionValues)
      fail_at("range() is too large (more than " + std::to_string(kMaxExpressionValues) + " values)");
    json arr = json::array();
    for (u64 i = 0; i < count; ++i) arr.push_back(static_cast<long long>(static_cast<u64>(start) + i * static_cast<u64>(step)));
    if (arr.empty()) fail_at("range(" + std::to_string(start) + ", " + std::to_string(stop) + ", " + std::to_string(step) + ") is empty");
    return arr;
  }

  const config::Document& doc_;
  std::string pointer_;
  std::string text_;
  size_t pos_ = 0;
  int depth_ = 0;
  size_t values_ = 0;
};

// How deeply `v` nests lists/mappings (a scalar: 0) and how many values it holds, walked without recursion; the
// walk stops once either passes its bound (the result is then just "too deep" / "too many").
struct Shape {
  int depth = 0;
  size_t values = 0;
};
Shape shape_of(const json& v) {
  Shape s;
  std::vector<std::pair<const json*, int>> todo{{&v, 0}};
  while (!todo.empty() && s.depth <= kMaxExpressionDepth && s.values <= kMaxExpressionValues) {
    auto [node, depth] = todo.back();
    todo.pop_back();
    ++s.values;
    if (!node->is_structured()) continue;
    s.depth = std::max(s.depth, depth + 1);
    for (const auto& child : *node) todo.push_back({&child, depth + 1});
  }
  return s;
}

// The largest |value| a sampler can produce before quantisation; quantised values must stay finite.
void check_quantum(const config::Document& doc, const std::string& where, const char* name, double top, double q) {
  if (!std::isfinite(top / q) || !std::isfinite(top + q))
    doc.error(where, std::string(name) + ": q=" + exact_number(q) + " is too small for values up to " + exact_number(top) +
                         " (round(value / q) * q would overflow)",
              "use a larger q or a narrower range");
}

// A normal sample is mu + sigma * z with |z| < 8.6 (Box-Muller from 53-bit uniforms): 9 sigma bounds every sample.
constexpr double kNormalSpan = 9;
// exp(x) is finite for x <= 709.78.
constexpr double kMaxExpArgument = 709;

}  // namespace

ExprKind expression_kind(const config::Document& doc, const std::string& pointer, const std::string& name) {
  std::string l = to_lower(trim(name));
  for (const auto& e : kExprs)
    if (l == e.name) return e.kind;
  std::string s = closest_match(l, expr_names());
  doc.error(pointer, "unknown expression '" + name + "'", s.empty() ? "use one of: " + join(expr_names(), ", ") : "did you mean '" + s + "'?");
}

// Everything a sampler could trip over is refused here, so that sampling a valid configuration can neither throw nor
// produce a non-finite number: bounds, widths, quantisation overflow, nesting and size of the values.
void build_parameter(const config::Document& doc, const std::string& where, Parameter& out, const std::vector<ExprArg>& args) {
  const ExprInfo& e = info(out.kind);
  auto need = [&](size_t n) {
    if (args.size() != n)
      doc.error(where, std::string(e.name) + " takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s") + ", got " +
                           std::to_string(args.size()),
                std::string("write ") + e.signature);
  };
  auto num = [&](size_t k, const char* what) -> double {
    const json& v = args[k].value;
    if (!v.is_number() || v.is_boolean())
      doc.error(where, std::string(e.name) + ": " + what + " must be a number, got " + v.dump(), std::string("write ") + e.signature);
    double d = v.get<double>();
    if (!std::isfinite(d)) doc.error(where, std::string(e.name) + ": " + what + " must be finite");
    return d;
  };
  auto too_deep = [&](int depth) {
    if (depth > kMaxExpressionDepth)
      doc.error(where, std::string(e.name) + ": the values are nested deeper than " + std::to_string(kMaxExpressionDepth) + " levels",
                "write the options as plain values or shallow lists, e.g. choice([16, 32], [64, 128])");
  };
  size_t total = 0;
  for (const auto& a : args) {
    Shape sh = shape_of(a.value);
    total += sh.values;
    // choice's options are checked one by one below (a list argument is only their container)
    if (out.kind != ExprKind::Choice) too_deep(sh.depth);
    if (total > kMaxExpressionValues)
      doc.error(where, std::string(e.name) + ": more than " + std::to_string(kMaxExpressionValues) + " values");
  }
  switch (out.kind) {
    case ExprKind::Choice: {
      if (args.empty()) doc.error(where, "choice needs at least one option", "write choice(16, 32, 64)");
      if (args.size() == 1 && args[0].sequence) {
        for (const auto& v : args[0].value) out.options.push_back(v);
        if (out.options.empty()) doc.error(where, "choice needs at least one option", "write choice(16, 32, 64)");
      } else {
        for (const auto& a : args) {
          too_deep(shape_of(a.value).depth);  // before the copy
          out.options.push_back(a.value);
        }
      }
      for (const auto& o : out.options) too_deep(shape_of(o).depth);
      break;
    }
    case ExprKind::RandInt: {
      need(1);
      const json& v = args[0].value;
      double d = num(0, "upper");
      bool whole = v.is_number_integer() || std::floor(d) == d;
      if (!whole || d < 1) doc.error(where, "randint(upper) needs an integer upper >= 1, got " + v.dump(), "randint(10) gives 0..9");
      bool too_big = v.is_number_unsigned() ? v.get<unsigned long long>() > static_cast<unsigned long long>(kMaxRandIntUpper)
                     : v.is_number_integer() ? v.get<long long>() > kMaxRandIntUpper
                                             : d > static_cast<double>(kMaxRandIntUpper);
      if (too_big)
        doc.error(where, "randint(upper) needs upper <= " + std::to_string(kMaxRandIntUpper) + " (2^53), got " + v.dump(),
                  "larger integers cannot be drawn exactly");
      out.upper = v.is_number_integer() ? v.get<long long>() : static_cast<long long>(d);
      break;
    }
    case ExprKind::Uniform:
    case ExprKind::LogUniform:
    case ExprKind::QUniform:
    case ExprKind::QLogUniform:
    case ExprKind::Normal:
    case ExprKind::LogNormal:
    case ExprKind::QNormal:
    case ExprKind::QLogNormal: {
      const bool normal = out.kind == ExprKind::Normal || out.kind == ExprKind::LogNormal || out.kind == ExprKind::QNormal ||
                          out.kind == ExprKind::QLogNormal;
      const bool log = out.kind == ExprKind::LogUniform || out.kind == ExprKind::QLogUniform || out.kind == ExprKind::LogNormal ||
                       out.kind == ExprKind::QLogNormal;
      const bool q = out.quantised();
      need(q ? 3 : 2);
      out.a = num(0, normal ? "mu" : "lo");
      out.b = num(1, normal ? "sigma" : "hi");
      auto read_q = [&] {
        out.q = num(2, "q");
        if (!(out.q > 0)) doc.error(where, std::string(e.name) + " needs q > 0, got q=" + exact_number(out.q));
      };
      double top = 0;  // the largest |value| a sample can have before quantisation
      if (!normal) {
        if (!(out.a < out.b))
          doc.error(where, std::string(e.name) + "(lo, hi) needs lo < hi, got lo=" + exact_number(out.a) + " hi=" + exact_number(out.b));
        if (!std::isfinite(out.b - out.a))
          doc.error(where, std::string(e.name) + "(lo, hi): hi - lo must be a finite number, got lo=" + exact_number(out.a) + " hi=" + exact_number(out.b));
        if (q) read_q();
        if (log && (out.b > 700 || out.a < -745))
          doc.error(where, std::string(e.name) + "(lo, hi) samples exp(uniform(lo, hi)); lo and hi are natural logarithms and must lie in [-745, 700]",
                    "for 1e-5..1e-1 write " + std::string(e.name) + "(-11.5, -2.3)");
        top = log ? std::exp(out.b) : std::max(std::fabs(out.a), std::fabs(out.b));
      } else {
        if (!(out.b > 0)) doc.error(where, std::string(e.name) + " needs sigma > 0, got sigma=" + exact_number(out.b), "for a fixed value write choice(value)");
        double lo = out.a - kNormalSpan * out.b, hi = out.a + kNormalSpan * out.b;
        if (!std::isfinite(lo) || !std::isfinite(hi))
          doc.error(where, std::string(e.name) + "(mu, sigma): mu +- 9 sigma must be finite numbers, got mu=" + exact_number(out.a) + " sigma=" + exact_number(out.b));
        if (log && hi > kMaxExpArgument)
          doc.error(where, std::string(e.name) + "(mu, sigma) samples exp(normal(mu, sigma)); mu + 9 sigma must be at most 709 so that exp() stays finite, got " +
                               exact_number(hi),
                    "mu and sigma are on the natural-log scale");
        if (q) read_q();
        top = log ? std::exp(hi) : std::max(std::fabs(lo), std::fabs(hi));
      }
      if (q) check_quantum(doc, where, e.name, top, out.q);
      break;
    }
  }
}

const char* expr_name(ExprKind kind) { return info(kind).name; }

bool Parameter::quantised() const {
  return kind == ExprKind::QUniform || kind == ExprKind::QLogUniform || kind == ExprKind::QNormal || kind == ExprKind::QLogNormal;
}

json Parameter::to_json() const {
  json j{{"name", name}, {"expression", expr_name(kind)}};
  json values = json::array();
  switch (kind) {
    case ExprKind::Choice: values = json(options); break;
    case ExprKind::RandInt: values.push_back(upper); break;
    default:
      values.push_back(a);
      values.push_back(b);
      if (quantised()) values.push_back(q);
  }
  j["values"] = values;
  return j;
}

long long grid_size(const std::vector<Parameter>& params) {
  long long n = 1;
  for (const auto& p : params) {
    long long k = p.kind == ExprKind::Choice ? static_cast<long long>(p.options.size()) : 0;
    if (k == 0) return 0;
    if (n > (1LL << 62) / k) return 1LL << 62;
    n *= k;
  }
  return n;
}

void parse_expression(const config::Document& doc, const std::string& pointer, const std::string& text, Parameter& out) {
  ExprParser(doc, pointer, text).parse(out);
}

}  // namespace amlc::sweep
