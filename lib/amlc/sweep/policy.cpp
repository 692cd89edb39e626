#include "amlc/sweep/policy.hpp"

#include <algorithm>
#include <cmath>

#include "amlc/core/util.hpp"

namespace amlc::sweep {

bool is_better(double a, double b, Goal goal) { return goal == Goal::Maximize ? a > b : a < b; }

json Decision::to_json() const { return json{{"run", run}, {"interval", interval}, {"rule", rule}, {"numbers", numbers}, {"reason", reason}}; }

int evaluation_point(const PolicyConfig& policy, int n) {
  if (policy.type == PolicyType::None || n < 1) return 0;
  int step = std::max(1, policy.evaluation_interval);
  int e = (n / step) * step;
  if (e < 1 || e < policy.delay_evaluation) return 0;
  return e;
}

std::optional<double> best_value(const std::vector<double>& values, Goal goal) {
  std::optional<double> best;
  for (double v : values) {
    if (std::isnan(v)) continue;
    if (!best || is_better(v, *best, goal)) best = v;
  }
  return best;
}

std::vector<Decision> decide(const PolicyConfig& policy, const std::vector<RunSeries>& runs, Goal goal) {
  std::vector<Decision> out;
  if (policy.type == PolicyType::None) return out;
  const char* word = goal == Goal::Maximize ? "below" : "above";
  for (const auto& r : runs) {
    if (!r.running) continue;
    int e = evaluation_point(policy, static_cast<int>(r.values.size()));
    if (e == 0) continue;
    size_t at = static_cast<size_t>(e - 1);
    double v = r.values[at];
    if (!std::isfinite(v)) {
      out.push_back({r.run, e, "nan", json{{"value", nullptr}}, "run " + std::to_string(r.run) + " reported a non-finite primary metric at interval " + std::to_string(e)});
      continue;
    }
    // The population at E.
    std::vector<const RunSeries*> pop;
    for (const auto& o : runs) {
      if (o.values.size() < static_cast<size_t>(e)) continue;
      if (policy.type == PolicyType::TruncationSelection && policy.exclude_finished_jobs && !o.running && o.run != r.run) continue;
      pop.push_back(&o);
    }
    switch (policy.type) {
      case PolicyType::Bandit: {
        double best = v;
        int best_run = r.run;
        for (const auto* o : pop) {
          double ov = o->values[at];
          if (std::isfinite(ov) && is_better(ov, best, goal)) {
            best = ov;
            best_run = o->run;
          }
        }
        double cutoff;
        std::string rule;
        json nums{{"value", v}, {"best", best}, {"bestRun", best_run}};
        if (policy.slack_factor) {
          double s = *policy.slack_factor;
          bool shrink = (goal == Goal::Maximize) == (best >= 0);  // divide when that moves the cutoff to the worse side
          cutoff = shrink ? best / (1 + s) : best * (1 + s);
          rule = "bandit_slack_factor";
          nums["slackFactor"] = s;
        } else {
          double a = policy.slack_amount.value_or(0);
          cutoff = goal == Goal::Maximize ? best - a : best + a;
          rule = "bandit_slack_amount";
          nums["slackAmount"] = a;
        }
        nums["cutoff"] = cutoff;
        if (is_better(cutoff, v, goal))
          out.push_back({r.run, e, rule, nums,
                         "run " + std::to_string(r.run) + " at interval " + std::to_string(e) + ": " + format_number(v) + " is " + word + " the Bandit cutoff " +
                             format_number(cutoff) + " (best " + format_number(best) + " by run " + std::to_string(best_run) + ")"});
        break;
      }
      case PolicyType::MedianStopping: {
        std::vector<double> avgs;
        for (const auto* o : pop) {
          double sum = 0;
          int cnt = 0;
          for (size_t k = 0; k <= at; ++k)
            if (std::isfinite(o->values[k])) {
              sum += o->values[k];
              ++cnt;
            }
          if (cnt) avgs.push_back(sum / cnt);
        }
        if (avgs.empty()) break;
        std::sort(avgs.begin(), avgs.end());
        size_t n = avgs.size();
        double median = n % 2 ? avgs[n / 2] : 0.5 * (avgs[n / 2 - 1] + avgs[n / 2]);
        std::vector<double> upto(r.values.begin(), r.values.begin() + e);
        double b = best_value(upto, goal).value_or(v);
        if (is_better(median, b, goal))
          out.push_back({r.run, e, "median_stopping", json{{"value", v}, {"best", b}, {"median", median}, {"count", n}},
                         "run " + std::to_string(r.run) + " at interval " + std::to_string(e) + ": its best " + format_number(b) + " is " + word +
                             " the median " + format_number(median) + " of the running averages of " + std::to_string(n) + " runs"});
        break;
      }
      case PolicyType::TruncationSelection: {
        std::vector<double> vals;
        for (const auto* o : pop)
          if (std::isfinite(o->values[at])) vals.push_back(o->values[at]);
        size_t n = vals.size();
        size_t k = n * static_cast<size_t>(policy.truncation_percentage) / 100;
        if (k == 0) break;
        // worst first
        std::sort(vals.begin(), vals.end(), [&](double a, double b) { return is_better(b, a, goal); });
        double cutoff = vals[k - 1];
        size_t strictly_better = 0;
        for (double x : vals)
          if (is_better(x, v, goal)) ++strictly_better;
        if (strictly_better >= n - k)
          out.push_back({r.run, e, "truncation_selection",
                         json{{"value", v}, {"cutoff", cutoff}, {"count", n}, {"truncated", k}, {"truncationPercentage", policy.truncation_percentage}},
                         "run " + std::to_string(r.run) + " at interval " + std::to_string(e) + ": " + format_number(v) + " is in the lowest " +
                             std::to_string(policy.truncation_percentage) + "% (" + std::to_string(k) + " of " + std::to_string(n) +
                             " runs, cutoff " + format_number(cutoff) + ")"});
        break;
      }
      case PolicyType::None: break;
    }
  }
  return out;
}

}  // namespace amlc::sweep
