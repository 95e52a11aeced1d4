// Calibration of the uncertainty threshold on a labelled set (in the spirit of RouteLLM): each
// prompt has a score (the device's uncertainty on it) and a label (easy: the device should
// answer; hard: the cloud should). For a target share of requests answered on the device, the
// threshold is placed between the scores so that the lowest-scoring share stays on the device;
// the report gives how well that split agrees with the labels, and the AUC of the score as a
// hard-vs-easy detector (0.5 = no better than chance).
//
//   std::vector<LabelledScore> xs = {{.score = 7.1, .hard = false}, {.score = 9.3, .hard = true}};
//   CalibrationReport r = calibrate_threshold(xs, 0.5);
//   cfg.uncertainty_threshold = r.threshold;
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace edgelm::router {

struct LabelledScore {
  double score = 0;  // higher = less sure = more cloud-worthy
  bool hard = false;
};

struct SplitQuality {
  int n = 0, n_easy = 0, n_hard = 0;
  double device_share = 0;    // fraction routed to the device (score <= threshold)
  double accuracy = 0;        // easy on device + hard on cloud, over all
  double easy_on_device = 0;  // fraction of easy prompts kept on the device
  double hard_to_cloud = 0;   // fraction of hard prompts sent to the cloud
};

struct CalibrationReport {
  double target_device_share = 0;
  double threshold = 0;
  SplitQuality at_threshold;
  double auc = 0.5;  // P(score(hard) > score(easy)), ties count half
  std::string to_json() const;
};

// Errors: INVALID_ARGUMENT for an empty set or a share outside [0, 1].
StatusOr<CalibrationReport> calibrate_threshold(std::vector<LabelledScore> xs,
                                                double target_device_share);
SplitQuality evaluate_split(const std::vector<LabelledScore>& xs, double threshold);
double score_auc(const std::vector<LabelledScore>& xs);

}  // namespace edgelm::router
