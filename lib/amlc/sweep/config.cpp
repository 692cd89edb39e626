#include "amlc/sweep/config.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>

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

std::string escape_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

// One argument of an expression: a value, or a sequence (list literal / range) that choice may expand.
struct Arg {
  json value;
  bool sequence = false;
};

// ---- native expression parser: name(arg, ...) with numbers, quoted or bare strings, [lists], range() ----
class ExprParser {
 public:
  ExprParser(const config::Document& doc, std::string pointer, std::string text)
      : doc_(doc), pointer_(std::move(pointer)), text_(std::move(text)) {}

  void parse(Parameter& out) {
    skip_ws();
    std::string name = ident();
    if (name.empty()) fail_at("expected an expression such as uniform(0.05, 0.1) or choice(16, 32)");
    std::string lname = to_lower(name);
    const ExprInfo* found = nullptr;
    for (const auto& e : kExprs)
      if (lname == e.name) found = &e;
    if (!found) {
      std::string s = closest_match(lname, expr_names());
      doc_.error(pointer_, "unknown expression '" + name + "'",
                 s.empty() ? "use one of: " + join(expr_names(), ", ") : "did you mean '" + s + "'?");
    }
    skip_ws();
    expect('(');
    std::vector<Arg> args = arg_list(')');
    skip_ws();
    if (pos_ != text_.size()) fail_at("unexpected text after the closing ')'");
    out.kind = found->kind;
    build(out, args);
  }

  void build(Parameter& out, const std::vector<Arg>& args);

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
  std::vector<Arg> arg_list(char close) {
    std::vector<Arg> args;
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
  Arg arg() {
    skip_ws();
    if (pos_ >= text_.size()) fail_at("unexpected end of the expression");
    count_values(1);
    char c = text_[pos_];
    if (c == '[') {
      enter();
      ++pos_;
      std::vector<Arg> items = arg_list(']');
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
      std::vector<Arg> ra = arg_list(')');
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
  json range(const std::vector<Arg>& ra) {
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

// Validates argument counts/ranges and fills `out`. `where` is the pointer used in errors. Everything a sampler
// could trip over is refused here, so that sampling a valid configuration can neither throw nor produce a
// non-finite number: bounds, widths, quantisation overflow, nesting and size of the values.
void build_parameter(const config::Document& doc, const std::string& where, Parameter& out, const std::vector<Arg>& args) {
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
    case ExprKind::QLogUniform: {
      bool q = out.kind == ExprKind::QUniform || out.kind == ExprKind::QLogUniform;
      bool log = out.kind == ExprKind::LogUniform || out.kind == ExprKind::QLogUniform;
      need(q ? 3 : 2);
      out.a = num(0, "lo");
      out.b = num(1, "hi");
      if (!(out.a < out.b))
        doc.error(where, std::string(e.name) + "(lo, hi) needs lo < hi, got lo=" + exact_number(out.a) + " hi=" + exact_number(out.b));
      if (!std::isfinite(out.b - out.a))
        doc.error(where, std::string(e.name) + "(lo, hi): hi - lo must be a finite number, got lo=" + exact_number(out.a) + " hi=" + exact_number(out.b));
      if (q) {
        out.q = num(2, "q");
        if (!(out.q > 0)) doc.error(where, std::string(e.name) + " needs q > 0, got q=" + exact_number(out.q));
      }
      if (log) {
        if (out.b > 700 || out.a < -745)
          doc.error(where, std::string(e.name) + "(lo, hi) samples exp(uniform(lo, hi)); lo and hi are natural logarithms and must lie in [-745, 700]",
                    "for 1e-5..1e-1 write " + std::string(e.name) + "(-11.5, -2.3)");
      }
      if (q) check_quantum(doc, where, e.name, log ? std::exp(out.b) : std::max(std::fabs(out.a), std::fabs(out.b)), out.q);
      break;
    }
    case ExprKind::Normal:
    case ExprKind::LogNormal:
    case ExprKind::QNormal:
    case ExprKind::QLogNormal: {
      bool q = out.kind == ExprKind::QNormal || out.kind == ExprKind::QLogNormal;
      bool log = out.kind == ExprKind::LogNormal || out.kind == ExprKind::QLogNormal;
      need(q ? 3 : 2);
      out.a = num(0, "mu");
      out.b = num(1, "sigma");
      if (!(out.b > 0)) doc.error(where, std::string(e.name) + " needs sigma > 0, got sigma=" + exact_number(out.b), "for a fixed value write choice(value)");
      double lo = out.a - kNormalSpan * out.b, hi = out.a + kNormalSpan * out.b;
      if (!std::isfinite(lo) || !std::isfinite(hi))
        doc.error(where, std::string(e.name) + "(mu, sigma): mu +- 9 sigma must be finite numbers, got mu=" + exact_number(out.a) + " sigma=" + exact_number(out.b));
      if (log && hi > kMaxExpArgument)
        doc.error(where, std::string(e.name) + "(mu, sigma) samples exp(normal(mu, sigma)); mu + 9 sigma must be at most 709 so that exp() stays finite, got " +
                             exact_number(hi),
                  "mu and sigma are on the natural-log scale");
      if (q) {
        out.q = num(2, "q");
        if (!(out.q > 0)) doc.error(where, std::string(e.name) + " needs q > 0, got q=" + exact_number(out.q));
        check_quantum(doc, where, e.name, log ? std::exp(hi) : std::max(std::fabs(lo), std::fabs(hi)), out.q);
      }
      break;
    }
  }
}

}  // namespace

void ExprParser::build(Parameter& out, const std::vector<Arg>& args) { build_parameter(doc_, pointer_, out, args); }

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

const char* sampling_name(SamplingType t) {
  switch (t) {
    case SamplingType::Random: return "random";
    case SamplingType::Grid: return "grid";
    case SamplingType::Bayesian: return "bayesian";
  }
  return "random";
}
const char* goal_name(Goal g) { return g == Goal::Maximize ? "Maximize" : "Minimize"; }
const char* policy_name(PolicyType t) {
  switch (t) {
    case PolicyType::None: return "NoTerminationPolicy";
    case PolicyType::Bandit: return "BanditPolicy";
    case PolicyType::MedianStopping: return "MedianStoppingPolicy";
    case PolicyType::TruncationSelection: return "TruncationSelectionPolicy";
  }
  return "NoTerminationPolicy";
}

json PolicyConfig::to_json() const {
  json j{{"type", policy_name(type)}};
  if (type == PolicyType::None) return j;
  j["evaluation_interval"] = evaluation_interval;
  j["delay_evaluation"] = delay_evaluation;
  if (type == PolicyType::Bandit) {
    if (slack_factor) j["slack_factor"] = *slack_factor;
    if (slack_amount) j["slack_amount"] = *slack_amount;
  }
  if (type == PolicyType::TruncationSelection) {
    j["truncation_percentage"] = truncation_percentage;
    j["exclude_finished_jobs"] = exclude_finished_jobs;
  }
  return j;
}

json SweepConfig::to_json() const {
  json params = json::array();
  for (const auto& p : parameters) params.push_back(p.to_json());
  json j{{"source", source},
         {"sampling", {{"type", sampling_name(sampling)}, {"parameter_space", params}}},
         {"policy", policy.to_json()},
         {"primaryMetricName", primary_metric_name},
         {"primaryMetricGoal", goal_name(goal)},
         {"maxTotalRuns", max_total_runs},
         {"maxConcurrentRuns", max_concurrent_runs},
         {"maxDurationMinutes", max_duration_minutes ? json(*max_duration_minutes) : json(nullptr)},
         {"maxFailures", max_failures},
         {"seed", seed ? json(*seed) : json(nullptr)},
         {"warnings", warnings}};
  return j;
}

SweepConfig SweepConfig::from_json(const json& j) {
  // The journal stores to_json(): read it back through the normal parser (a Document over the JSON itself, no text
  // in between), so a damaged or no longer accepted configuration is caught by the same checks as a file.
  try {
    json az;
    az["sampling"] = {{"type", j.at("sampling").at("type")}, {"parameter_space", j.at("sampling").at("parameter_space")}};
    az["policy"] = j.at("policy");
    az["primary_metric_name"] = j.at("primaryMetricName");
    az["primary_metric_goal"] = j.at("primaryMetricGoal");
    az["max_total_runs"] = j.at("maxTotalRuns");
    az["max_concurrent_runs"] = j.at("maxConcurrentRuns");
    if (!j.at("maxDurationMinutes").is_null()) az["max_duration_minutes"] = j.at("maxDurationMinutes");
    az["max_failures"] = j.at("maxFailures");
    if (!j.at("seed").is_null()) az["seed"] = j.at("seed");
    for (auto& p : az["sampling"]["parameter_space"])
      if (p.at("expression") == "choice") p["values"] = json::array({p.at("values")});
    SweepConfig c = parse_config(config::Document("the sweep's recorded configuration (from " + j.value("source", std::string("?")) + ")",
                                                  std::move(az), {}));
    c.source = j.value("source", c.source);
    return c;
  } catch (const json::exception& e) {
    fail(ErrorKind::Damaged, std::string("the sweep configuration recorded in the journal is damaged: ") + e.what());
  }
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

namespace {

std::optional<SamplingType> parse_sampling(std::string s) {
  s = to_lower(trim(s));
  if (s == "random") return SamplingType::Random;
  if (s == "grid") return SamplingType::Grid;
  if (s == "bayesian" || s == "bayesianoptimization") return SamplingType::Bayesian;
  return std::nullopt;
}

PolicyConfig parse_policy(const config::Document& doc) {
  PolicyConfig p;
  const json* node = doc.find("/policy");
  if (!node || node->is_null()) return p;
  doc.check_keys("/policy", {"type", "evaluation_interval", "delay_evaluation", "slack_factor", "slack_amount",
                             "truncation_percentage", "exclude_finished_jobs"});
  std::string type = doc.get_string("/policy/type").value_or("NoTerminationPolicy");
  std::string t = to_lower(trim(type));
  if (t.size() > 6 && t.substr(t.size() - 6) == "policy") t = t.substr(0, t.size() - 6);
  if (t == "bandit") p.type = PolicyType::Bandit;
  else if (t == "medianstopping" || t == "median") p.type = PolicyType::MedianStopping;
  else if (t == "truncationselection" || t == "truncation") p.type = PolicyType::TruncationSelection;
  else if (t == "notermination" || t == "none" || t == "default") p.type = PolicyType::None;
  else {
    std::vector<std::string> names{"BanditPolicy", "MedianStoppingPolicy", "TruncationSelectionPolicy", "NoTerminationPolicy"};
    std::string s = closest_match(type, names);
    doc.error("/policy/type", "unknown policy type '" + type + "'",
              s.empty() ? "use one of: " + join(names, ", ") : "did you mean '" + s + "'?");
  }
  auto not_for = [&](const char* key) {
    if (doc.find(std::string("/policy/") + key))
      doc.error(std::string("/policy/") + key, std::string("does not apply to ") + policy_name(p.type), "remove it");
  };
  if (p.type == PolicyType::None) {
    for (const char* k : {"evaluation_interval", "delay_evaluation", "slack_factor", "slack_amount", "truncation_percentage", "exclude_finished_jobs"})
      not_for(k);
    return p;
  }
  if (auto v = doc.get_int("/policy/evaluation_interval")) {
    if (*v < 1) doc.error("/policy/evaluation_interval", "must be >= 1, got " + std::to_string(*v));
    if (*v > 1000000) doc.error("/policy/evaluation_interval", "is too large (at most 1000000)");
    p.evaluation_interval = static_cast<int>(*v);
  }
  if (auto v = doc.get_int("/policy/delay_evaluation")) {
    if (*v < 0) doc.error("/policy/delay_evaluation", "must be >= 0, got " + std::to_string(*v));
    if (*v > 1000000) doc.error("/policy/delay_evaluation", "is too large (at most 1000000)");
    p.delay_evaluation = static_cast<int>(*v);
  }
  if (p.type != PolicyType::Bandit) {
    not_for("slack_factor");
    not_for("slack_amount");
  }
  if (p.type != PolicyType::TruncationSelection) {
    not_for("truncation_percentage");
    not_for("exclude_finished_jobs");
  }
  if (p.type == PolicyType::Bandit) {
    p.slack_factor = doc.get_number("/policy/slack_factor");
    p.slack_amount = doc.get_number("/policy/slack_amount");
    if (p.slack_factor && p.slack_amount)
      doc.error("/policy/slack_amount", "BanditPolicy takes slack_factor or slack_amount, not both", "remove one of them");
    if (!p.slack_factor && !p.slack_amount)
      doc.error("/policy", "Please provide a slack factor or slack amount for BanditPolicy",
                "add slack_factor: 0.1 (a run is canceled below best/(1+0.1)) or slack_amount: 0.05");
    if (p.slack_factor && !(*p.slack_factor > 0 && std::isfinite(*p.slack_factor)))
      doc.error("/policy/slack_factor", "must be a number > 0, got " + exact_number(*p.slack_factor));
    if (p.slack_amount && !(*p.slack_amount >= 0 && std::isfinite(*p.slack_amount)))
      doc.error("/policy/slack_amount", "must be a number >= 0, got " + exact_number(*p.slack_amount));
  }
  if (p.type == PolicyType::TruncationSelection) {
    auto v = doc.get_int("/policy/truncation_percentage");
    if (!v) doc.error("/policy", "TruncationSelectionPolicy needs truncation_percentage (an integer 1 to 99)", "add truncation_percentage: 20");
    if (*v < 1 || *v > 99) doc.error("/policy/truncation_percentage", "must be an integer from 1 to 99, got " + std::to_string(*v));
    p.truncation_percentage = static_cast<int>(*v);
    p.exclude_finished_jobs = doc.get_bool("/policy/exclude_finished_jobs").value_or(false);
  }
  return p;
}

Goal parse_goal(const config::Document& doc, const std::string& pointer) {
  std::string g = doc.require_string(pointer);
  std::string l = to_lower(trim(g));
  if (l == "maximize" || l == "max") return Goal::Maximize;
  if (l == "minimize" || l == "min") return Goal::Minimize;
  doc.error(pointer, "expected Maximize or Minimize, got '" + g + "'");
}

void validate_grid_option(const config::Document& doc, const std::string& where, const Parameter& p) {
  bool any_string = false, all_string = true;
  for (const auto& o : p.options) {
    if (!(o.is_string() || (o.is_number() && !o.is_boolean())))
      doc.error(where, "grid sampling needs choice options that are integers, floats or strings; parameter '" + p.name +
                           "' has " + o.dump());
    any_string |= o.is_string();
    all_string &= o.is_string();
  }
  if (any_string && !all_string)
    doc.error(where, "grid sampling needs the options of parameter '" + p.name + "' to be all strings or all numbers");
}

}  // namespace

SweepConfig parse_config(const config::Document& doc) {
  SweepConfig c;
  c.source = doc.source();
  if (!doc.root().is_object()) doc.error("", "a sweep file must be a mapping (sampling:, policy:, primary_metric_name:, ...)");
  bool native = doc.find("/parameters") != nullptr;
  std::vector<std::string> param_where;  // pointer for each parameter (errors)

  if (native) {
    doc.check_keys("", {"parameters", "sampling", "policy", "primary_metric", "primary_metric_name", "primary_metric_goal",
                        "max_total_runs", "max_concurrent_runs", "max_duration_minutes", "max_failures", "seed"});
    const json* s = doc.find("/sampling");
    if (!s || s->is_null()) {
      c.sampling = SamplingType::Random;
    } else if (s->is_object()) {
      doc.check_keys("/sampling", {"type"});
      std::string t = doc.require_string("/sampling/type");
      auto st = parse_sampling(t);
      if (!st) doc.error("/sampling/type", "expected random, grid or bayesian, got '" + t + "'");
      c.sampling = *st;
    } else {
      std::string t = doc.require_string("/sampling");
      auto st = parse_sampling(t);
      if (!st) doc.error("/sampling", "expected random, grid or bayesian, got '" + t + "'");
      c.sampling = *st;
    }
    const json& params = *doc.find("/parameters");
    if (!params.is_object()) doc.error("/parameters", "expected a mapping of parameter name to expression, e.g. learning_rate: uniform(0.05, 0.1)");
    if (params.empty()) doc.error("/parameters", "Please provide parameter space: at least one parameter", "add e.g. learning_rate: uniform(0.05, 0.1)");
    if (params.size() > kMaxParameters) doc.error("/parameters", "more than " + std::to_string(kMaxParameters) + " parameters");
    // nlohmann::json objects are sorted by key; recover file order from the marks.
    std::vector<std::pair<std::pair<int, int>, std::string>> ordered;
    for (const auto& [key, value] : params.items()) {
      auto m = doc.key_mark("/parameters/" + escape_token(key));
      ordered.push_back({{m.line, m.col}, key});
    }
    std::sort(ordered.begin(), ordered.end());
    for (const auto& [pos, key] : ordered) {
      std::string ptr = "/parameters/" + escape_token(key);
      const json& v = params.at(key);
      Parameter p;
      p.name = key;
      if (v.is_string()) {
        parse_expression(doc, ptr, v.get<std::string>(), p);
      } else if (v.is_array()) {
        p.kind = ExprKind::Choice;
        std::vector<Arg> args{{v, true}};
        build_parameter(doc, ptr, p, args);
      } else if (v.is_object()) {
        doc.check_keys(ptr, {"expression", "values"});
        std::string e = doc.require_string(ptr + "/expression");
        const json* vals = doc.find(ptr + "/values");
        if (!vals || !vals->is_array()) doc.error(ptr + "/values", "expected a list of the expression's arguments");
        std::vector<Arg> args;
        for (const auto& a : *vals) args.push_back({a, a.is_array()});
        std::string l = to_lower(trim(e));
        bool ok = false;
        for (const auto& ei : kExprs)
          if (l == ei.name) { p.kind = ei.kind; ok = true; }
        if (!ok) doc.error(ptr + "/expression", "unknown expression '" + e + "'", "use one of: " + join(expr_names(), ", "));
        build_parameter(doc, ptr, p, args);
      } else {
        doc.error(ptr, "expected an expression string such as uniform(0.05, 0.1) or a list of choices");
      }
      c.parameters.push_back(std::move(p));
      param_where.push_back(ptr);
    }
    if (doc.find("/primary_metric")) {
      if (doc.find("/primary_metric_name") || doc.find("/primary_metric_goal"))
        doc.error("/primary_metric", "give primary_metric: {name, goal} or primary_metric_name/primary_metric_goal, not both");
      const json* pm = doc.find("/primary_metric");
      if (pm->is_string()) doc.error("/primary_metric", "expected a mapping {name: accuracy, goal: maximize}");
      doc.check_keys("/primary_metric", {"name", "goal"});
      c.primary_metric_name = doc.require_string("/primary_metric/name");
      c.goal = parse_goal(doc, "/primary_metric/goal");
    } else {
      if (!doc.find("/primary_metric_name")) doc.error("", "primary_metric is required", "add primary_metric: {name: accuracy, goal: maximize}");
      c.primary_metric_name = doc.require_string("/primary_metric_name");
      c.goal = parse_goal(doc, "/primary_metric_goal");
    }
  } else {
    doc.check_keys("", {"sampling", "policy", "primary_metric_name", "primary_metric_goal", "max_total_runs", "max_concurrent_runs",
                        "max_duration_minutes", "max_failures", "seed"});
    if (!doc.find("/sampling")) doc.error("", "sampling is required (or use the native form with parameters:)",
                                          "add sampling: {type: random, parameter_space: [...]}");
    const json* s = doc.find("/sampling");
    if (!s->is_object()) doc.error("/sampling", "expected a mapping with type and parameter_space");
    doc.check_keys("/sampling", {"type", "parameter_space"});
    auto t = doc.get_string("/sampling/type");
    if (!t) doc.error("/sampling", "Please provide hyperparameter sampling type: random, grid or bayesian", "add type: random");
    auto st = parse_sampling(*t);
    if (!st) doc.error("/sampling/type", "expected random, grid or bayesian, got '" + *t + "'");
    c.sampling = *st;
    const json* ps = doc.find("/sampling/parameter_space");
    if (!ps || ps->is_null() || (ps->is_array() && ps->empty()))
      doc.error(ps ? "/sampling/parameter_space" : "/sampling", "Please provide parameter space: a list of {name, expression, values}",
                "add parameter_space: [{name: --learning_rate, expression: uniform, values: [0.05, 0.1]}]");
    if (!ps->is_array()) doc.error("/sampling/parameter_space", "expected a list of {name, expression, values}");
    if (ps->size() > kMaxParameters) doc.error("/sampling/parameter_space", "more than " + std::to_string(kMaxParameters) + " parameters");
    for (size_t i = 0; i < ps->size(); ++i) {
      std::string ptr = "/sampling/parameter_space/" + std::to_string(i);
      if (!(*ps)[i].is_object()) doc.error(ptr, "expected a mapping {name, expression, values}");
      doc.check_keys(ptr, {"name", "expression", "values"});
      Parameter p;
      p.name = doc.require_string(ptr + "/name");
      if (trim(p.name).empty()) doc.error(ptr + "/name", "must not be empty");
      std::string e = doc.require_string(ptr + "/expression");
      std::string l = to_lower(trim(e));
      bool ok = false;
      for (const auto& ei : kExprs)
        if (l == ei.name) { p.kind = ei.kind; ok = true; }
      if (!ok) {
        std::string sug = closest_match(l, expr_names());
        doc.error(ptr + "/expression", "unknown expression '" + e + "'",
                  sug.empty() ? "use one of: " + join(expr_names(), ", ") : "did you mean '" + sug + "'?");
      }
      const json* vals = doc.find(ptr + "/values");
      if (!vals) doc.error(ptr, "values is required (the expression's arguments as a list)");
      std::vector<Arg> args;
      if (vals->is_array()) {
        for (const auto& a : *vals) args.push_back({a, a.is_array()});
      } else {
        args.push_back({*vals, false});
      }
      build_parameter(doc, ptr + "/values", p, args);
      c.parameters.push_back(std::move(p));
      param_where.push_back(ptr);
    }
    if (!doc.find("/primary_metric_name")) doc.error("", "primary_metric_name is required", "add primary_metric_name: accuracy");
    c.primary_metric_name = doc.require_string("/primary_metric_name");
    if (!doc.find("/primary_metric_goal")) doc.error("", "primary_metric_goal is required", "add primary_metric_goal: Maximize");
    c.goal = parse_goal(doc, "/primary_metric_goal");
  }
  if (trim(c.primary_metric_name).empty())
    doc.error(native && doc.find("/primary_metric") ? "/primary_metric/name" : "/primary_metric_name", "must not be empty");

  // (Text that is not UTF-8, which the sweep record and journal could not hold, never gets here: config::parse
  // refuses it at its line:col.)
  // Parameter names: unique once leading '-' are stripped.
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < c.parameters.size(); ++i) {
    std::string bare = c.parameters[i].name;
    while (!bare.empty() && bare[0] == '-') bare.erase(0, 1);
    if (bare.empty()) doc.error(param_where[i], "parameter name '" + c.parameters[i].name + "' has no letters after the dashes");
    auto [it, inserted] = seen.emplace(bare, i);
    if (!inserted)
      doc.error(param_where[i], "parameter '" + c.parameters[i].name + "' is the same script argument as '" + c.parameters[it->second].name + "'",
                "remove one of them");
  }

  c.policy = parse_policy(doc);

  // Sampling-specific rules.
  for (size_t i = 0; i < c.parameters.size(); ++i) {
    const Parameter& p = c.parameters[i];
    if (c.sampling == SamplingType::Grid) {
      if (p.kind != ExprKind::Choice)
        doc.error(param_where[i], std::string("grid sampling supports only choice; parameter '") + p.name + "' uses " + expr_name(p.kind),
                  "use random or bayesian sampling, or turn it into choice(...)");
      validate_grid_option(doc, param_where[i], p);
    }
    if (c.sampling == SamplingType::Bayesian) {
      bool ok = p.kind == ExprKind::Choice || p.kind == ExprKind::Uniform || p.kind == ExprKind::QUniform || p.kind == ExprKind::RandInt ||
                p.kind == ExprKind::LogUniform || p.kind == ExprKind::QLogUniform;
      if (!ok)
        doc.error(param_where[i], std::string("bayesian sampling supports choice, uniform, quniform, randint, loguniform and qloguniform; parameter '") +
                                      p.name + "' uses " + expr_name(p.kind),
                  "use random sampling, or a uniform/loguniform range");
    }
  }
  if (c.sampling == SamplingType::Bayesian && c.policy.type != PolicyType::None)
    doc.error("/policy", "No early termination policy is currently supported with Bayesian sampling",
              "remove the policy block or use random sampling");

  // Budgets.
  long long grid = c.sampling == SamplingType::Grid ? grid_size(c.parameters) : 0;
  if (auto v = doc.get_int("/max_total_runs")) {
    if (*v < 1 || *v > 1000) doc.error("/max_total_runs", "must be an integer from 1 to 1000, got " + std::to_string(*v));
    c.max_total_runs = static_cast<int>(*v);
  } else if (c.sampling == SamplingType::Grid) {
    c.max_total_runs = static_cast<int>(std::min<long long>(grid, 1000));
    if (grid > 1000) c.warnings.push_back("the grid has " + std::to_string(grid) + " points; only the first 1000 run (max_total_runs defaults to min(grid size, 1000))");
  } else {
    doc.error("", "max_total_runs is required (an integer from 1 to 1000)", "add max_total_runs: 20");
  }
  if (c.sampling == SamplingType::Grid && grid > c.max_total_runs && doc.find("/max_total_runs"))
    c.warnings.push_back("the grid has " + std::to_string(grid) + " points; max_total_runs " + std::to_string(c.max_total_runs) + " runs only the first ones");
  if (auto v = doc.get_int("/max_concurrent_runs")) {
    if (*v < 1 || *v > 100) doc.error("/max_concurrent_runs", "must be an integer from 1 to 100, got " + std::to_string(*v));
    c.max_concurrent_runs = static_cast<int>(*v);
  } else {
    c.max_concurrent_runs = std::min(c.max_total_runs, 100);
  }
  if (auto v = doc.get_number("/max_duration_minutes")) {
    if (!(*v > 0) || !std::isfinite(*v)) doc.error("/max_duration_minutes", "must be a number > 0, got " + exact_number(*v));
    if (*v > 10080) {
      c.warnings.push_back("max_duration_minutes " + exact_number(*v) + " is above the limit of 10080 (7 days); using 10080");
      c.max_duration_minutes = 10080;
    } else {
      c.max_duration_minutes = *v;
    }
  }
  if (auto v = doc.get_int("/max_failures")) {
    if (*v < 1) doc.error("/max_failures", "must be an integer >= 1, got " + std::to_string(*v));
    c.max_failures = static_cast<int>(std::min<long long>(*v, 1000000));
  } else {
    c.max_failures = std::min(c.max_total_runs, std::max(3, c.max_total_runs / 4));
  }
  if (const json* sv = doc.find("/seed"); sv && !sv->is_null()) {
    if (sv->is_number_unsigned()) c.seed = sv->get<std::uint64_t>();
    else if (sv->is_number_integer() && sv->get<long long>() >= 0) c.seed = static_cast<std::uint64_t>(sv->get<long long>());
    else doc.error("/seed", "must be an integer >= 0, got " + sv->dump());
  }
  if (c.sampling == SamplingType::Bayesian) {
    size_t n = c.parameters.size();
    if (static_cast<size_t>(c.max_total_runs) < 20 * n)
      c.warnings.push_back("bayesian sampling works best with max_total_runs >= 20 x the number of parameters (" + std::to_string(20 * n) + ")");
    if (c.max_concurrent_runs > 20)
      c.warnings.push_back("bayesian sampling converges better with max_concurrent_runs <= 20: each new sample learns from more finished runs");
  }
  return c;
}

SweepConfig load_config(const std::filesystem::path& path) { return parse_config(config::load_file(path)); }

SweepConfig parse_config_text(const std::string& text, const std::string& source_name) {
  return parse_config(config::parse(text, source_name));
}

std::string argument_name(const std::string& name) { return !name.empty() && name[0] == '-' ? name : "--" + name; }

std::string format_value(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_null()) return "None";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number_unsigned()) return std::to_string(v.get<unsigned long long>());
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    std::string s = exact_number(d);
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
  }
  return v.dump();
}

std::vector<std::string> script_arguments(const SweepConfig& cfg, const json& params) {
  std::vector<std::string> out;
  for (const auto& p : cfg.parameters) {
    if (!params.contains(p.name)) continue;
    out.push_back(argument_name(p.name));
    out.push_back(format_value(params.at(p.name)));
  }
  return out;
}

std::vector<std::string> script_arguments(const json& params) {
  std::vector<std::string> out;
  for (const auto& [k, v] : params.items()) {
    out.push_back(argument_name(k));
    out.push_back(format_value(v));
  }
  return out;
}

}  // namespace amlc::sweep
