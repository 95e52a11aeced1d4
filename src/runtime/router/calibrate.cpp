// Threshold calibration (see calibrate.h).
#include "runtime/router/calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace edgelm::router {

SplitQuality evaluate_split(const std::vector<LabelledScore>& xs, double threshold) {
  SplitQuality q;
  int device = 0, correct = 0, easy_dev = 0, hard_cloud = 0;
  for (const LabelledScore& x : xs) {
    const bool on_device = x.score <= threshold;
    ++q.n;
    (x.hard ? q.n_hard : q.n_easy)++;
    device += on_device;
    if (!x.hard && on_device) ++easy_dev;
    if (x.hard && !on_device) ++hard_cloud;
  }
  correct = easy_dev + hard_cloud;
  if (q.n > 0) {
    q.device_share = static_cast<double>(device) / q.n;
    q.accuracy = static_cast<double>(correct) / q.n;
  }
  if (q.n_easy > 0) q.easy_on_device = static_cast<double>(easy_dev) / q.n_easy;
  if (q.n_hard > 0) q.hard_to_cloud = static_cast<double>(hard_cloud) / q.n_hard;
  return q;
}

double score_auc(const std::vector<LabelledScore>& xs) {
  double wins = 0;
  int64_t pairs = 0;
  for (const LabelledScore& h : xs) {
    if (!h.hard) continue;
    for (const LabelledScore& e : xs) {
      if (e.hard) continue;
      ++pairs;
      if (h.score > e.score) {
        wins += 1;
      } else if (h.score == e.score) {
        wins += 0.5;
      }
    }
  }
  return pairs > 0 ? wins / static_cast<double>(pairs) : 0.5;
}

StatusOr<CalibrationReport> calibrate_threshold(std::vector<LabelledScore> xs,
                                                double target_device_share) {
  if (xs.empty()) return Status::invalid_argument("calibrate: the labelled set is empty");
  if (!(target_device_share >= 0 && target_device_share <= 1)) {
    return Status::invalid_argument(
        fmt::format("calibrate: target device share {} is outside [0, 1]", target_device_share));
  }
  std::vector<double> s;
  for (const auto& x : xs) s.push_back(x.score);
  std::sort(s.begin(), s.end());
  const size_t n = s.size();
  const size_t k = static_cast<size_t>(std::llround(target_device_share * static_cast<double>(n)));
  CalibrationReport r;
  r.target_device_share = target_device_share;
  if (k == 0) {
    r.threshold = s.front() - 1.0;  // everything to the cloud
  } else if (k >= n) {
    r.threshold = s.back();  // everything on the device
  } else {
    r.threshold = 0.5 * (s[k - 1] + s[k]);  // ties straddling the cut stay together below
  }
  r.at_threshold = evaluate_split(xs, r.threshold);
  r.auc = score_auc(xs);
  return r;
}

std::string CalibrationReport::to_json() const {
  nlohmann::ordered_json j;
  j["target_device_share"] = target_device_share;
  j["threshold"] = threshold;
  j["n"] = at_threshold.n;
  j["n_easy"] = at_threshold.n_easy;
  j["n_hard"] = at_threshold.n_hard;
  j["device_share"] = at_threshold.device_share;
  j["routing_accuracy"] = at_threshold.accuracy;
  j["easy_kept_on_device"] = at_threshold.easy_on_device;
  j["hard_sent_to_cloud"] = at_threshold.hard_to_cloud;
  j["auc"] = auc;
  return j.dump();
}

}  // namespace edgelm::router
