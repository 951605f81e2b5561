// One call that replays a network under every configuration of a study (oracle, vDNN, each cDMA
// engine) with both replays, and checks that they agree.
#pragma once

#include <cdma/hwmodel/replay.hpp>

#include <string>
#include <vector>

namespace cdma::hwmodel {

struct StudyConfig {
  LinkParams link;
  Policy policy = Policy::vdnn_all;
  std::vector<Engine> engines;  // cDMA engines; vDNN (placement none) is added in front
};

struct StudyResult {
  std::vector<ReplayResult> results;  // oracle, vDNN, then engines (closed form)
  std::vector<EventReplay> events;    // same order (event replay)
  // Empty when every closed-form total and forward time equals its event replay's; else one
  // sentence naming the configuration and both times.
  std::string disagreement;
};

// The offload plan is computed once and shared by all engines.
StudyResult run_study(const Network& net, const StudyConfig& cfg);

}  // namespace cdma::hwmodel
