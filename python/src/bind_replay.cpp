// cdma._native.replay: hwmodel::run_study (the study API of `cdma replay`), returning the cdma-replay
// JSON (hwmodel::study_json, the one writer of it) and its tidy tables (hwmodel::replay_tables).
#include "native.hpp"

#include <cdma/analyze/pipeline.hpp>
#include <cdma/hwmodel/study.hpp>

#include <memory>

namespace cdma::python {

namespace {

namespace hw = cdma::hwmodel;

std::optional<double> opt_double(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return std::nullopt;
  return option<double>(d, key, 0);
}

hw::StudyRequest request_from(const py::dict& d) {
  hw::StudyRequest r;
  r.networks = hw::expand_networks(option<std::vector<std::string>>(d, "networks", {}));
  for (const auto& t : option<std::vector<std::string>>(d, "traces", {})) r.traces.emplace_back(t);
  r.batch = option<int>(d, "batch", r.batch);
  r.precision = option<std::string>(d, "precision", r.precision);
  r.presets = option<std::string>(d, "presets", "");
  r.gpu = option<std::string>(d, "gpu", r.gpu);
  r.link = option<std::string>(d, "link", r.link);
  r.link_gbps = opt_double(d, "link_gbps");
  r.link_eff = opt_double(d, "link_eff");
  r.latency_us = opt_double(d, "latency_us");
  r.compute_eff = opt_double(d, "compute_eff");
  r.dram_eff = opt_double(d, "dram_eff");
  r.peak_tflops = opt_double(d, "peak_tflops");
  r.dram_gbps = opt_double(d, "dram_gbps");
  r.policy = hw::parse_policy(option<std::string>(d, "policy", "vdnn-all"));
  r.engines = option<std::vector<std::string>>(d, "engines", {});
  r.read_gbps = option<double>(d, "read_gbps", 0);
  r.comp_gbps = option<double>(d, "comp_gbps", 0);
  r.compute = hw::parse_compute_source(option<std::string>(d, "compute", "auto"));
  r.compute_scale = option<double>(d, "compute_scale", r.compute_scale);
  r.bwd_factor = option<double>(d, "bwd_factor", r.bwd_factor);
  r.conv_kernel = option<int>(d, "conv_kernel", r.conv_kernel);
  r.trace_batch = option<std::int64_t>(d, "trace_batch", 0);
  r.ratios.ratio = opt_double(d, "ratio");
  r.ratios.density = opt_double(d, "density");
  r.ratios.table_file = option<std::string>(d, "ratios", "");
  r.ratios.table_trace_index = option<int>(d, "ratios_trace_index", 0);
  if (d.contains("ratios_analysis") && !d["ratios_analysis"].is_none()) {
    const auto& a = d["ratios_analysis"].cast<const analyze::Analysis&>();
    r.ratios.table = hw::ratio_table_from_analysis(a, r.ratios.table_trace_index);
    r.ratios.table_label = option<std::string>(d, "ratios_label", "analysis");
  }
  r.ratios.fill = hw::parse_fill(option<std::string>(d, "fill", "none"));
  r.sweep = hw::parse_sweep(option<std::string>(d, "sweep", ""));
  r.sweep_values = option<std::vector<double>>(d, "sweep_values", {});
  r.keep_events = option<bool>(d, "events", false);
  return r;
}

}  // namespace

void bind_replay(py::module_& m) {
  m.def(
      "replay",
      [](const py::dict& req) {
        const hw::StudyRequest r = request_from(req);
        // Trace replays read HDF5: the whole study runs under the lock, without the GIL.
        const auto out = run_hdf5([&] {
          const hw::StudyReport rep = hw::run_study(r);
          nlohmann::json doc = hw::study_json(rep);
          hw::ReplayTables t = hw::replay_tables(doc);
          std::string events = r.keep_events ? hw::study_events_json(rep).dump() : std::string();
          return std::make_tuple(doc.dump(), std::move(t), std::move(events));
        });
        const auto& [doc, t, events] = out;
        py::dict res;
        res["json"] = doc;
        res["totals"] = table_to_py(t.totals);
        res["layers"] = table_to_py(t.layers);
        res["summary"] = table_to_py(t.summary);
        res["sweep"] = table_to_py(t.sweep);
        res["events"] = events.empty() ? py::object(py::none()) : py::object(py::str(events));
        return res;
      },
      py::arg("request"));
  m.def("zoo_networks", [] { return hw::expand_networks({"all"}); });
}

}  // namespace cdma::python
