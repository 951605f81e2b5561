// Replay timelines on the report's timeline chart.
#include <cdma/formats/error.hpp>
#include <cdma/formats/text.hpp>
#include <cdma/report/svg.hpp>
#include <cdma/report/timeline.hpp>

#include <fmt/core.h>

#include <algorithm>

namespace cdma::report {

using nlohmann::json;

namespace {

// Palette indices (Okabe-Ito): a distinct colour for each kind of operation, transfers included.
constexpr int kForward = 0, kBackward = 2, kOffload = 1, kPrefetch = 5, kFetch = 3, kKernel = 4;

int colour(const std::string& kind) {
  if (kind == "forward") return kForward;
  if (kind == "backward") return kBackward;
  if (kind == "compress" || kind == "decompress") return kKernel;
  if (kind == "fetch") return kFetch;
  if (kind == "prefetch") return kPrefetch;
  return kOffload;
}

const json& field(const json& j, const char* key, std::size_t replay) {
  if (!j.is_object() || !j.contains(key))
    throw formats::Error(
        fmt::format("replay timeline: replays[{}] has no \"{}\" (expected cdma-replay-events v1)", replay, key));
  return j[key];
}

}  // namespace

std::string replay_timeline(const std::vector<json>& replays, const std::string& title, bool standalone) {
  std::vector<std::string> lanes;
  std::vector<Span> spans;
  try {
    for (std::size_t i = 0; i < replays.size(); ++i) {
      const json& r = replays[i];
      if (r.value("schema", "") != "cdma-replay-events")
        throw formats::Error(fmt::format("replay timeline: replays[{}] is not a cdma-replay-events document", i));
      const std::string label = field(r, "config", i).get<std::string>();
      const double total_ms = field(r, "total_ps", i).get<double>() / 1e9;
      // Lane names are unique per replay (configuration labels are).
      const std::string compute = fmt::format("{} ({:.1f} ms)", label, total_ms), mem = label + " memory";
      lanes.push_back(compute);
      lanes.push_back(mem);
      const json& layers = field(r, "layers", i);
      for (const auto& e : field(r, "events", i)) {
        const double s = e.at("start_ps").get<double>() / 1e9, t = e.at("end_ps").get<double>() / 1e9;
        if (t <= s) continue;
        const int layer = e.at("layer").get<int>();
        const std::string name = layer >= 0 && static_cast<std::size_t>(layer) < layers.size()
                                     ? layers[static_cast<std::size_t>(layer)].value("name", "")
                                     : "";
        const std::string kind = e.at("kind").get<std::string>();
        const auto bytes = e.value("bytes", std::int64_t{0});
        spans.push_back({e.at("stream").get<std::string>() == "compute" ? compute : mem, s, t, colour(kind),
                         fmt::format("{} {} {:.3f}-{:.3f} ms{}", kind, name, s, t,
                                     bytes > 0 ? " " + formats::human_bytes(static_cast<double>(bytes)) : "")});
      }
    }
  } catch (const json::exception& e) {
    throw formats::Error(fmt::format("replay timeline: a field of the wrong type ({})", e.what()));
  }
  Axes ax;
  ax.title = title;
  ax.x_label = "time (ms); gaps on a compute lane are stalls";
  ax.width = kPageWidth;
  ax.height = 34 + 50 + static_cast<int>(lanes.size()) * 20;
  ax.standalone = standalone;
  return timeline_chart(ax, lanes, spans,
                        {{kForward, "forward"},
                         {kBackward, "backward"},
                         {kOffload, "offload"},
                         {kPrefetch, "prefetch"},
                         {kFetch, "on-demand fetch"},
                         {kKernel, "(de)compression kernel"}});
}

}  // namespace cdma::report
