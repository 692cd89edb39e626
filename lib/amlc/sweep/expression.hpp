// Search-space expressions: one sweep parameter ("uniform(0.05, 0.1)", "choice(16, 32, 64)"), parsed and checked
// into a Parameter. The configuration file around them (both forms, policy, budgets) is config.hpp.
//
// Expressions (reference §3): choice(opts...) (one list/range argument = its elements are the options;
// otherwise each argument, lists included, is one option), randint(upper) in [0, upper),
// uniform(lo, hi), quniform(lo, hi, q) = round(uniform(lo, hi)/q)*q, loguniform(lo, hi) = exp(uniform(lo, hi)),
// qloguniform(lo, hi, q) = round(exp(uniform(lo, hi))/q)*q, normal(mu, sigma), qnormal(mu, sigma, q),
// lognormal(mu, sigma) = exp(normal(mu, sigma)), qlognormal(mu, sigma, q). Rounding is half-to-even
// (numpy.round). Quantised values are integers when q is a whole number, floats otherwise.
// The native text form is name(arg, ...) with numbers, quoted or bare strings, [lists], range(start, stop, step),
// True/False/None; the az form is {expression: name, values: [args...]} (see config.hpp).
// Checks (all at submit time, so that sampling a valid configuration can neither fail nor produce a non-finite
// number): every number finite; lo < hi with hi - lo finite; sigma > 0 with mu +- 9 sigma finite; q > 0 with
// round(value / q) * q finite over the whole range; loguniform bounds in [-745, 700] and lognormal's
// mu + 9 sigma <= 709 (exp stays finite); randint's upper an integer in 1..2^53; choice non-empty; range step
// != 0 and non-empty; text valid UTF-8. Sizes: the values of one expression nest at most kMaxExpressionDepth
// lists deep and hold at most kMaxExpressionValues values (range() included); at most kMaxParameters parameters.
// Errors go through the config::Document, so they carry file:line:col and the key path.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "amlc/config/document.hpp"

namespace amlc::sweep {

using json = nlohmann::json;

inline constexpr int kMaxExpressionDepth = 32;
inline constexpr size_t kMaxExpressionValues = 100000;
inline constexpr long long kMaxRandIntUpper = 1LL << 53;
inline constexpr size_t kMaxParameters = 1000;

enum class ExprKind { Choice, RandInt, Uniform, QUniform, LogUniform, QLogUniform, Normal, QNormal, LogNormal, QLogNormal };
const char* expr_name(ExprKind kind);

struct Parameter {
  std::string name;             // as written ("--penalty" or "learning_rate")
  ExprKind kind = ExprKind::Choice;
  std::vector<json> options;    // choice
  double a = 0, b = 0, q = 0;   // uniform-like: lo, hi; normal-like: mu, sigma; q for the quantised ones
  long long upper = 0;          // randint
  json to_json() const;         // {"name", "expression", "values"} (az form, expanded choice options)
  bool quantised() const;
};

// Parses one native expression string ("uniform(0.05, 0.1)") into `out` (name preset). Errors via doc at pointer.
void parse_expression(const config::Document& doc, const std::string& pointer, const std::string& text, Parameter& out);

// The az form's pieces, for the configuration parser: the expression named `name` (case-insensitive; an error at
// `pointer` with a did-you-mean otherwise), and one argument of it: a value, or a sequence (a list or range) that
// choice may expand into its options.
ExprKind expression_kind(const config::Document& doc, const std::string& pointer, const std::string& name);
struct ExprArg {
  json value;
  bool sequence = false;
};
// Checks the arguments of out.kind (counts, ranges, sizes, nesting) and fills `out`; errors at `pointer`.
void build_parameter(const config::Document& doc, const std::string& pointer, Parameter& out, const std::vector<ExprArg>& args);

// Number of grid points (product of choice sizes), saturating at 2^62.
long long grid_size(const std::vector<Parameter>& params);

}  // namespace amlc::sweep
