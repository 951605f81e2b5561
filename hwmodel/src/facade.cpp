#include <cdma/hwmodel/facade.hpp>

#include <fmt/core.h>

namespace cdma::hwmodel {

StudyResult run_study(const Network& net, const StudyConfig& cfg) {
  StudyResult out;
  const OffloadPlan plan = plan_offload(net, cfg.policy);
  const OffloadPlan none = plan_offload(net, Policy::none);
  Engine vdnn;
  vdnn.label = "vDNN";
  std::vector<const Engine*> engines = {nullptr, &vdnn};
  for (const auto& e : cfg.engines) engines.push_back(&e);
  for (const Engine* e : engines) {
    ReplayResult r = e ? replay_closed_form(net, plan, e, cfg.link) : replay_closed_form(net, none, nullptr, cfg.link);
    EventReplay ev = replay_events(net, e ? cfg.policy : Policy::none, e, cfg.link);
    if (out.disagreement.empty() && (r.total_ps != ev.total_ps || r.forward_ps != ev.forward_ps))
      out.disagreement = fmt::format("{} on {}: closed form {} ps (forward {}), event replay {} ps (forward {})",
                                     r.label, net.name, r.total_ps, r.forward_ps, ev.total_ps, ev.forward_ps);
    out.results.push_back(std::move(r));
    out.events.push_back(std::move(ev));
  }
  return out;
}

}  // namespace cdma::hwmodel
