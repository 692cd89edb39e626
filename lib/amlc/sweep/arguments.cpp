// How a trial's parameters become script arguments (arguments.hpp).
#include "amlc/sweep/arguments.hpp"

#include <cmath>
#include <set>

#include "amlc/core/util.hpp"
#include "amlc/runs/metrics.hpp"

namespace amlc::sweep {

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

std::vector<std::string> remove_parameter_arguments(const SweepConfig& cfg, const std::vector<std::string>& args,
                                                    std::vector<std::string>* dropped) {
  std::set<std::string> names;
  for (const auto& p : cfg.parameters) names.insert(bare_parameter_name(p.name));
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() > 1 && a[0] == '-') {
      std::string body = bare_parameter_name(a);
      auto eq = body.find('=');
      std::string name = eq == std::string::npos ? body : body.substr(0, eq);
      if (names.count(name)) {
        if (dropped) dropped->push_back(a.substr(0, a.find('=')));
        if (eq == std::string::npos && i + 1 < args.size() &&
            (args[i + 1].empty() || args[i + 1][0] != '-' || runs::parse_metric_number(args[i + 1]))) {
          ++i;  // its value
        }
        continue;
      }
    }
    out.push_back(a);
  }
  return out;
}

}  // namespace amlc::sweep
